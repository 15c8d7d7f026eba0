"""The `lsst.pipe.base.Instrument` for real SPHEREx data (Level-2 spectral images from IRSA)."""

from __future__ import annotations

__all__ = ["SPHERExInstrument"]

from typing import TYPE_CHECKING

from ._instrument import SimulatorInstrument

if TYPE_CHECKING:
    from lsst.daf.butler import DataId, FormatterV2


class SPHERExInstrument(SimulatorInstrument):
    """SPHEREx itself: instrument ``SPHEREx`` with the same six detector arrays as the simulator.

    Exposure ids are derived from the observation id (see `spherex.instrument.exposure_id_from_obsid`),
    which needs twelve decimal digits, hence the larger `exposure_max`.
    """

    exposure_max = 10**12
    """Exclusive upper bound of exposure ids (12 decimal digits of the encoded OBSID)."""

    @classmethod
    def getName(cls) -> str:
        """Return the instrument name, ``SPHEREx``."""
        return "SPHEREx"

    def getRawFormatter(self, dataId: DataId) -> type[FormatterV2]:
        """Return the formatter of Level-2 spectral images, `SPHERExLevel2ImageFormatter`."""
        from ..formatters import SPHERExLevel2ImageFormatter

        return SPHERExLevel2ImageFormatter
