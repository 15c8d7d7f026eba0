"""The `lsst.pipe.base.Instrument` for simulated SPHEREx data."""

from __future__ import annotations

__all__ = ["SimulatorInstrument"]

from typing import TYPE_CHECKING

from lsst.pipe.base import Instrument
from lsst.utils.introspection import get_full_type_name

from .detectors import DETECTORS

if TYPE_CHECKING:
    from lsst.daf.butler import DataId, FormatterV2, Registry


class SimulatorInstrument(Instrument):
    """SPHEREx as seen through the bundled simulator (``spherex-simulate``).

    Registers the ``instrument`` record ``simulator`` (with ``class_name`` pointing here, which
    ctrl_mpexec needs to construct the instrument from a repository) and the six detector arrays with
    their band metadata.
    """

    exposure_max = 10**9
    """Exclusive upper bound of exposure ids."""

    @classmethod
    def getName(cls) -> str:
        # Docstring inherited.
        return "simulator"

    def register(self, registry: Registry, *, update: bool = False) -> None:
        # Docstring inherited.
        name = self.getName()
        with registry.transaction():
            registry.syncDimensionData(
                "instrument",
                {
                    "name": name,
                    "exposure_max": self.exposure_max,
                    "detector_max": max(d.id for d in DETECTORS) + 1,
                    "class_name": get_full_type_name(self),
                },
                update=update,
            )
            for info in DETECTORS:
                registry.syncDimensionData(
                    "detector",
                    {
                        "instrument": name,
                        "id": info.id,
                        "full_name": info.full_name,
                        "band": info.band,
                        "lmin": info.lmin,
                        "lmax": info.lmax,
                        "resolving_power": info.resolving_power,
                        "focal_plane": info.focal_plane,
                    },
                    update=update,
                )

    def getRawFormatter(self, dataId: DataId) -> type[FormatterV2]:
        # Docstring inherited.
        from ..formatters import SPHERExImageFormatter

        return SPHERExImageFormatter
