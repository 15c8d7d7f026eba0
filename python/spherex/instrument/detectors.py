"""The six SPHEREx detector arrays: bands, wavelength ranges and focal-plane layout."""

from __future__ import annotations

__all__ = ["ARRAY_SIZE", "DETECTORS", "PIXEL_SCALE_ARCSEC", "DetectorInfo", "get_detector"]

from dataclasses import dataclass

ARRAY_SIZE = 2040
"""Active pixels along each side of a SPHEREx H2RG array (2048 less the reference pixels)."""

PIXEL_SCALE_ARCSEC = 6.15
"""Plate scale of every SPHEREx array, arcsec per pixel (an array sees ~3.5 x 3.5 deg)."""


@dataclass(frozen=True)
class DetectorInfo:
    """Static description of one SPHEREx detector array.

    Parameters
    ----------
    id : `int`
        Detector id, 1-6; also the SPHEREx band number.
    full_name : `str`
        Name used in file names and data IDs, ``D1``..``D6``.
    lmin, lmax : `float`
        Wavelength range covered by the array's linear variable filter, micron.
    resolving_power : `float`
        Spectral resolving power R = lambda / delta lambda.
    focal_plane : `str`
        ``SWIR`` (arrays 1-3) or ``MWIR`` (arrays 4-6).
    field_offset : `int`
        Position of the array's field across the focal plane, in array widths from the boresight
        (-1, 0, +1).  Arrays 1-3 sit side by side on the sky; the dichroic sends the same sky to
        arrays 4-6, so array N+3 sees the field of array N.
    """

    id: int
    full_name: str
    lmin: float
    lmax: float
    resolving_power: float
    focal_plane: str
    field_offset: int

    @property
    def band(self) -> int:
        """SPHEREx band number (the same as the detector id)."""
        return self.id


DETECTORS: tuple[DetectorInfo, ...] = (
    DetectorInfo(1, "D1", 0.75, 1.09, 39.0, "SWIR", -1),
    DetectorInfo(2, "D2", 1.10, 1.62, 41.0, "SWIR", 0),
    DetectorInfo(3, "D3", 1.63, 2.41, 41.0, "SWIR", 1),
    DetectorInfo(4, "D4", 2.42, 3.82, 35.0, "MWIR", -1),
    DetectorInfo(5, "D5", 3.83, 4.41, 112.0, "MWIR", 0),
    DetectorInfo(6, "D6", 4.42, 5.00, 128.0, "MWIR", 1),
)
"""SPHEREx's six arrays (SPHEREx Explanatory Supplement, band table)."""


def get_detector(detector: int) -> DetectorInfo:
    """Return the description of one detector array.

    Parameters
    ----------
    detector : `int`
        Detector id, 1-6.

    Returns
    -------
    info : `DetectorInfo`
        The array's static description.

    Raises
    ------
    LookupError
        Raised if ``detector`` is not one of SPHEREx's six arrays.
    """
    for info in DETECTORS:
        if info.id == detector:
            return info
    raise LookupError(f"SPHEREx has detector arrays 1-6; there is no detector {detector!r}.")
