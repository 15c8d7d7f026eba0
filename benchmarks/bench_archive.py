"""Forced measurements per second over a remote archive: the pipeline against the scripts astronomers run.

    python benchmarks/bench_archive.py [--quick] [--size 2040] [--exposures 1] [--targets 200]
        [--latency 0.03] [--bandwidth 50e6]

Simulates ``exposures`` x 6 Level-2 images and serves them in IRSA's layout from the loopback archive
server (`tests.archive_http`: each request answered after ``--latency`` seconds, bodies at
``--bandwidth`` bytes/s, IRSA's cutout service included).  The files are registered in place
(``butler ingest-spherex REPO URL... --transfer direct``; its time is printed, not counted).  Then,
each from nothing parsed or cached, for the same targets at random pixels of every image:

(p) ``spherex-spectrum --targets`` on that repository (`measure_spectra`): targets ingested, graph
    built and run, cutouts read by byte ranges, spectra read back;
(a) a script that downloads each whole file and measures the targets on it
    (`ForcedSpectrophotometryTask.run` on the image in memory: the same fit);
(b) a script that fetches one IRSA cutout (``<file>?center=RA,DECdeg&size=N pix``, N the fit's box)
    per target and image in turn and measures it, as spherex-tools and IRSA's notebooks do.  It is told
    for free which images hold each target (what a TAP query per target would tell it).

Prints each contender's seconds and measurements per second and the ratios (p)/(a) (goal >= 10x) and
(p)/(b) (goal >= 2x).  ``--quick`` (512 x 512 images, 60 targets) takes about a minute.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests
from astropy.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lsst.daf.butler.script import createRepo  # noqa: E402
from tests.archive_http import ArchiveHttpServer, lay_out_as_irsa  # noqa: E402

from bench_spectra import make_catalogue  # noqa: E402
from spectra_storage import DIMENSIONS, SEED  # noqa: E402
from spherex.core import SPHERExLevel2Image  # noqa: E402
from spherex.core.fits.layout import clear_layout_cache  # noqa: E402
from spherex.script.ingest.level2 import ingest_spherex  # noqa: E402
from spherex.script.spectrum import measure_spectra  # noqa: E402
from spherex.simulator.level2 import simulate_level2  # noqa: E402
from spherex.tasks import ForcedSpectrophotometryTask  # noqa: E402
from spherex.tasks.catalogue_cache import TARGET_CATALOGUES  # noqa: E402


def pipeline(repo: str, catalogue: Path, prefix: str) -> int:
    """(p) ``spherex-spectrum --targets`` on the repository of files registered in place."""
    result = measure_spectra(repo, targets=catalogue, output=None, collections="SPHEREx/*", run_prefix=prefix)
    return sum(len(spectrum) for spectrum in result.spectra.values())


def whole_files(urls: list[str], targets: Table, session: requests.Session) -> int:
    """(a) Download every file whole, measure the targets on it."""
    task = ForcedSpectrophotometryTask()
    measured = 0
    for url in urls:
        image = SPHERExLevel2Image.read(io.BytesIO(session.get(url, timeout=600).content))
        measured += len(task.run(image, [targets], 0, 0).measurements)
    return measured


def cutout_per_target(
    pairs: list[tuple[str, int]], targets: Table, size: int, session: requests.Session
) -> int:
    """(b) One IRSA cutout per (image, target) in turn, measured."""
    task = ForcedSpectrophotometryTask()
    measured = 0
    for url, row in pairs:
        target = targets[row : row + 1]
        query = f"?center={target['ra'][0]:.8f},{target['dec'][0]:.8f}deg&size={size} pix"
        answer = session.get(url + query, timeout=600)
        answer.raise_for_status()
        image = SPHERExLevel2Image.read(io.BytesIO(answer.content))
        measured += len(task.run(image, [target], 0, 0).measurements)
    return measured


def timed(work):  # type: ignore[no-untyped-def]
    """Run ``work`` from nothing parsed or cached; return its value and wall seconds."""
    clear_layout_cache()
    TARGET_CATALOGUES.clear()
    start = time.perf_counter()
    value = work()
    return value, time.perf_counter() - start


def holding_targets(files: list[Path], table: Table, size: int) -> list[np.ndarray]:
    """Which targets each image holds (what script (b) is told for free; read before its clock)."""
    holding = []
    for path in files:
        wcs = SPHERExLevel2Image.read(str(path)).wcs
        x, y = wcs.world_to_pixel_values(table["ra"], table["dec"])
        inside = (x > -0.5) & (x < size - 0.5) & (y > -0.5) & (y < size - 0.5)
        holding.append(np.flatnonzero(inside))
    return holding


def contest(
    server: ArchiveHttpServer,
    repo: str,
    urls: list[str],
    files: list[Path],
    n: int,
    work: Path,
    size: int,
    seed: int,
) -> None:
    """Every contender on ``n`` targets at random pixels of the images; print times and ratios."""
    table, catalogue = make_catalogue(files, n, work, seed=seed)
    pairs = [
        (url, int(row))
        for url, rows in zip(urls, holding_targets(files, table, size), strict=True)
        for row in rows
    ]
    box = 2 * ForcedSpectrophotometryTask().config.cutoutHalfSize + 1
    session = requests.Session()
    server.reset()
    n_p, t_p = timed(lambda: pipeline(repo, catalogue, f"bench{seed}"))
    bytes_p = server.bytes_sent()
    server.reset()
    n_a, t_a = timed(lambda: whole_files(urls, table, session))
    server.reset()
    n_b, t_b = timed(lambda: cutout_per_target(pairs, table, box, session))
    bytes_b = server.bytes_sent()
    assert n_p == n_a == n_b == len(pairs), (n_p, n_a, n_b, len(pairs))
    print(f"  {n_p} measurements ({n_p / len(urls):.0f} per image):")
    print(
        f"    (p) spherex-spectrum:      {t_p:7.2f} s {n_p / t_p:7.1f} measurements/s, {bytes_p / 1e6:.1f} MB"
    )
    print(f"    (a) script, whole files:   {t_a:7.2f} s {n_a / t_a:7.1f} measurements/s")
    print(
        f"    (b) script, a cutout each: {t_b:7.2f} s {n_b / t_b:7.1f} measurements/s, {bytes_b / 1e6:.1f} MB"
    )
    print(f"    ratio (p) vs (a): {t_a / t_p:.2f}x (goal >= 10x); (p) vs (b): {t_b / t_p:.2f}x (goal >= 2x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size", type=int, default=2040)
    parser.add_argument("--exposures", type=int, default=1)
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.03)
    parser.add_argument("--bandwidth", type=float, default=50e6)
    args = parser.parse_args()
    if args.quick:
        args.size, args.targets = 512, 60
    work = Path(tempfile.mkdtemp(prefix="spherex-bench-archive-"))
    os.environ["DAF_BUTLER_CACHE_DIRECTORY"] = str(work / "cache")
    try:
        files = simulate_level2(work / "sim", exposures=args.exposures, size=args.size, seed=5)
        relative = lay_out_as_irsa(files, work / "root", move=True)
        with ArchiveHttpServer(work / "root", latency=args.latency, bandwidth=args.bandwidth) as server:
            urls = [server.url(r) for r in relative]
            repo = str(work / "DATA")
            createRepo(repo, seed_config=SEED, dimension_config=DIMENSIONS, override=True)
            start = time.perf_counter()
            assert ingest_spherex(repo, urls, transfer="direct").ok
            ingest_seconds = time.perf_counter() - start
            ingest_bytes = server.bytes_sent() / len(urls)
            file_bytes = (work / "root" / relative[0]).stat().st_size
            print(
                f"{len(urls)} Level-2 files of {args.size} x {args.size} ({file_bytes / 1e6:.1f} MB) on the "
                f"loopback archive ({args.latency * 1e3:.0f} ms per request, {args.bandwidth / 1e6:.0f} MB/s)"
            )
            print(
                f"  ingest in place: {ingest_seconds:.2f} s, {ingest_bytes / 1e3:.0f} kB read per file "
                f"({100 * ingest_bytes / file_bytes:.1f}% of it)"
            )
            # A few targets per image (a catalogue spread over the sky), then many.
            for seed, n in enumerate((2 * len(urls), args.targets), start=1):
                contest(server, repo, urls, [work / "root" / r for r in relative], n, work, args.size, seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
