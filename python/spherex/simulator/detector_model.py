"""The simulated H2RG arrays: dark current, defective pixels, read noise and full well.

An array's defects are a property of the hardware: they depend on the seed and the detector id, not
on the exposure, so the same pixels are hot in every exposure and in every dark frame.
"""

from __future__ import annotations

__all__ = [
    "COLD_PIXEL_FRACTION",
    "DARK_CURRENT",
    "FULL_WELL_E",
    "HOT_PIXEL_FRACTION",
    "NONFUNC_PIXEL_FRACTION",
    "READ_NOISE_E",
    "DetectorModel",
    "detector_model",
]

from dataclasses import dataclass

import numpy as np

from ..core import LEVEL2_FLAG_BITS
from ..instrument.detectors import get_detector

READ_NOISE_E = 12.0
"""Effective read noise of one exposure after up-the-ramp fitting, electrons."""

FULL_WELL_E = 1.0e5
"""Charge a pixel holds before it saturates, electrons."""

DARK_CURRENT = {"SWIR": 0.02, "MWIR": 0.05}
"""Median dark current of a normal pixel, by focal plane, electron/s."""

HOT_PIXEL_FRACTION = 1.0e-3
"""Fraction of pixels with a dark current of 0.5-20 electron/s (at least three per array)."""

COLD_PIXEL_FRACTION = 5.0e-4
"""Fraction of pixels with 5-30 per cent of the normal response (at least two per array)."""

NONFUNC_PIXEL_FRACTION = 2.0e-4
"""Fraction of pixels that do not respond at all (at least one per array)."""

_DARK_SCATTER_DEX = 0.15
_HOT_DARK_RANGE = (0.5, 20.0)
_COLD_RESPONSE_RANGE = (0.05, 0.3)
_DETECTOR_STREAM = 3
"""Random-stream id that separates detector draws from the other draws made from the same seed."""


@dataclass(frozen=True)
class DetectorModel:
    """The fixed properties of one simulated array.

    Parameters
    ----------
    detector : `int`
        Detector id, 1-6.
    dark_current : `numpy.ndarray`
        Dark current of each pixel, electron/s.
    response : `numpy.ndarray`
        Response of each pixel to light relative to a normal pixel (1 for normal pixels).
    flags : `numpy.ndarray`
        ``HOT``, ``COLD`` and ``NONFUNC`` bits of each pixel (int32, `spherex.core.LEVEL2_FLAG_BITS`).
    read_noise : `float`, optional
        Effective read noise of one exposure, electrons.
    """

    detector: int
    dark_current: np.ndarray
    response: np.ndarray
    flags: np.ndarray
    read_noise: float = READ_NOISE_E


def detector_model(detector: int, size: int, seed: int) -> DetectorModel:
    """Return the fixed properties of one simulated array.

    Parameters
    ----------
    detector : `int`
        Detector id, 1-6.
    size : `int`
        Pixels along each side of the simulated array.
    seed : `int`
        Survey seed (>= 0).

    Returns
    -------
    model : `DetectorModel`
        The array's dark current, response and defect flags.

    Raises
    ------
    LookupError
        Raised if ``detector`` is not 1-6.
    """
    info = get_detector(detector)
    rng = np.random.default_rng([seed, _DETECTOR_STREAM, detector])
    n_pixels = size * size
    dark = DARK_CURRENT[info.focal_plane] * 10.0 ** rng.normal(0.0, _DARK_SCATTER_DEX, size=n_pixels)
    response = np.ones(n_pixels)
    flags = np.zeros(n_pixels, dtype=np.int32)

    n_hot = max(3, round(HOT_PIXEL_FRACTION * n_pixels))
    n_cold = max(2, round(COLD_PIXEL_FRACTION * n_pixels))
    n_dead = max(1, round(NONFUNC_PIXEL_FRACTION * n_pixels))
    defects = rng.choice(n_pixels, size=n_hot + n_cold + n_dead, replace=False)
    hot, cold, dead = np.split(defects, [n_hot, n_hot + n_cold])

    low, high = np.log10(_HOT_DARK_RANGE)
    dark[hot] = 10.0 ** rng.uniform(low, high, size=n_hot)
    flags[hot] |= 1 << LEVEL2_FLAG_BITS["HOT"]
    response[cold] = rng.uniform(*_COLD_RESPONSE_RANGE, size=n_cold)
    flags[cold] |= 1 << LEVEL2_FLAG_BITS["COLD"]
    response[dead] = 0.0
    dark[dead] = 0.0
    flags[dead] |= 1 << LEVEL2_FLAG_BITS["NONFUNC"]

    shape = (size, size)
    return DetectorModel(
        detector=detector,
        dark_current=dark.reshape(shape),
        response=response.reshape(shape),
        flags=flags.reshape(shape),
    )
