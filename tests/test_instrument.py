"""SimulatorInstrument as pipe_base and ctrl_mpexec see it."""

from __future__ import annotations

import pytest
from lsst.daf.butler import Butler
from lsst.pipe.base import Instrument

from spherex.instrument import DETECTORS, SimulatorInstrument, get_detector


def test_instrument_round_trip_through_registry(repo: str) -> None:
    with Butler.from_config(repo) as butler:
        # ctrl_mpexec rebuilds the instrument from the class name stored in the registry.
        instrument = Instrument.fromName("simulator", butler.registry)
        assert isinstance(instrument, SimulatorInstrument)
        assert Instrument.from_string("simulator", butler.registry).getName() == "simulator"


def test_raw_formatter_is_spherex_image() -> None:
    from spherex.formatters import SPHERExImageFormatter

    assert SimulatorInstrument().getRawFormatter({}) is SPHERExImageFormatter


def test_detector_table() -> None:
    assert [d.full_name for d in DETECTORS] == ["D1", "D2", "D3", "D4", "D5", "D6"]
    # The bands tile 0.75-5.0 micron without gaps larger than the band edges.
    for low, high in zip(DETECTORS, DETECTORS[1:]):
        assert low.lmax < high.lmin < low.lmax + 0.02
    assert get_detector(4).focal_plane == "MWIR"
    with pytest.raises(LookupError, match="detector 7"):
        get_detector(7)
