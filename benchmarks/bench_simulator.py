"""Benchmark of ``spherex-simulate``: time per exposure (six arrays), serial against parallel, and star
rendering by stamps against the naive full-image Gaussian per star.

Run ``python benchmarks/bench_simulator.py [--size 2040] [--exposures 2] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from spherex.instrument.detectors import ARRAY_SIZE
from spherex.simulator import (
    SkyModel,
    array_wcs,
    exposure_pointing,
    psf_sigma_pixels,
    render_point_sources,
    simulate,
)


def time_simulate(size: int, exposures: int, workers: int) -> float:
    with tempfile.TemporaryDirectory() as outdir:
        start = time.perf_counter()
        simulate(outdir, exposures=exposures, size=size, seed=1, workers=workers)
        return time.perf_counter() - start


def naive_render(x: np.ndarray, y: np.ndarray, flux: np.ndarray, sigma: float, size: int) -> np.ndarray:
    """The baseline: one full-image (point-sampled) Gaussian per star."""
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.zeros((size, size))
    for xi, yi, fi in zip(x, y, flux, strict=True):
        image += fi / (2 * np.pi * sigma**2) * np.exp(-((xx - xi) ** 2 + (yy - yi) ** 2) / (2 * sigma**2))
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=ARRAY_SIZE)
    parser.add_argument("--exposures", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    serial = time_simulate(args.size, args.exposures, 1)
    parallel = time_simulate(args.size, args.exposures, args.workers)
    print(
        f"simulate {args.exposures} exposure(s) x 6 arrays of {args.size}^2 pixels: "
        f"{serial:.1f} s serial ({serial / args.exposures:.1f} s per exposure), "
        f"{parallel:.1f} s with {args.workers} workers ({parallel / args.exposures:.1f} s per exposure); "
        f"speed-up {serial / parallel:.2f}x"
    )

    pointing = exposure_pointing(0, 1)
    wcs = array_wcs(pointing, 1, args.size)
    stars = SkyModel(1, args.size).stars(wcs, 1, margin=5)
    sigma = psf_sigma_pixels(1, pointing.jitter)
    start = time.perf_counter()
    render_point_sources(stars, sigma, args.size)
    stamps = time.perf_counter() - start
    sample = min(len(stars), 10)
    start = time.perf_counter()
    naive_render(stars.x[:sample], stars.y[:sample], stars.flux[:sample], sigma, args.size)
    naive = (time.perf_counter() - start) * len(stars) / max(sample, 1)
    print(
        f"render {len(stars)} stars on {args.size}^2 pixels: stamps {stamps * 1e3:.0f} ms, "
        f"full-image Gaussian per star {naive:.1f} s (extrapolated from {sample}); "
        f"ratio {naive / stamps:.0f}x"
    )


if __name__ == "__main__":
    main()
