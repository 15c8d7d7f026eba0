"""Forced measurements per second: the pipeline against the script it replaces, on three kinds of storage.

    python benchmarks/bench_spectra.py [--quick] [--storage warm|cold|s3|all|none] [--exposures 2]
        [--size 2040] [--targets 400] [--latency 0.03] [--bandwidth BYTES_PER_S]
        [--joint-size 512] [--joint-sources 200] [--joint-repeat 3]

Simulates ``exposures`` x 6 Level-2 images (2040 x 2040 by default).  On each kind of storage:

- ``warm``: local files in the page cache (read whole before each contender);
- ``cold``: local files evicted from the page cache before each contender (``posix_fadvise(DONTNEED)``);
- ``s3``: a sqlite + S3 repository on moto's server on 127.0.0.1, each request answered after
  ``--latency`` seconds (30 ms by default) and bodies sent at ``--bandwidth`` (50 MB/s by default, as
  the archive benchmark assumes; 0 for loopback speed);

three target layouts are measured (a few targets on one image; a quarter of ``--targets`` and all of
them at random pixels of every image), each contender starting with nothing parsed or cached:

(a) the pipeline as a user runs it, ``spherex-spectrum --targets`` (`measure_spectra`): the targets
    ingested, the quantum graph built and executed, the spectra read back;
(b) a plain script with no repository: read every file whole (downloaded whole from S3), find the
    targets on it with its WCS and measure them with the same fit (`ForcedSpectrophotometryTask.run` on
    the image in memory);
(c) that script told which files hold targets (an oracle spatial index);
(d) the measurement task alone on deferred handles (cutouts through ``butler.get``), what (a) does in
    each quantum.

Prints each contender's seconds, the ratio (a)/(b) with its goal (warm >= 1x, cold >= 3x, s3 >= 10x),
and each contender's cost fitted as fixed + per image + per measurement over the three layouts, which
says at what size the pipeline wins.  ``--quick`` (1 exposure, 200 targets) takes a few minutes.

Then the cost of blends (issue 22 point 6): the CPU per measurement of joint fits on a crowded field
against today's single-source fits on an isolated one, in the same run (goal <= 1.5x).  Both fields are
simulated by ``spherex-simulate --deep-field`` (3 exposures, all six arrays of ``--joint-size`` pixels):
the isolated one with ``--joint-sources`` grid sources, the crowded one with half as many, each with a
neighbour 0.5-3 pixels away (``--deep-field-neighbours``), so both measure the same number of targets
and every crowded target is fitted with its neighbour.  `ForcedSpectrophotometryTask.run` measures each
image read whole beforehand (reading is not timed: it is the same for both); the best of
``--joint-repeat`` runs is kept.  ``--storage none`` runs this part alone (about a minute).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from lsst.daf.butler import Butler

from spectra_storage import drop_page_cache, local_repo, read_whole, s3_repo, warm_page_cache
from spherex.core import SPHERExLevel2Image
from spherex.core.fits.layout import clear_layout_cache
from spherex.script.spectrum import measure_spectra
from spherex.simulator.deep_field import deep_field_sources, simulate_deep_field, targets_table
from spherex.simulator.level2 import simulate_level2
from spherex.tasks import ForcedSpectrophotometryTask
from spherex.tasks.catalogue_cache import TARGET_CATALOGUES


def make_targets(files: list[Path], n: int, seed: int = 1) -> Table:
    """Targets at random pixels of every Level-2 file: each image holds about ``n / len(files)`` of them."""
    rng = np.random.default_rng(seed)
    ra, dec = [], []
    for i, path in enumerate(files):
        header = fits.getheader(path, "IMAGE")
        count = n // len(files) + (i < n % len(files))
        x = rng.uniform(20, header["NAXIS1"] - 20, count)
        y = rng.uniform(20, header["NAXIS2"] - 20, count)
        world = WCS(header).pixel_to_world_values(x, y)
        ra.append(world[0])
        dec.append(world[1])
    ra, dec = np.concatenate(ra), np.concatenate(dec)
    return Table({"name": [f"t{i:05d}" for i in range(n)], "ra": ra, "dec": dec, "kind": [""] * n})


def make_catalogue(files: list[Path], n: int, work: Path, seed: int = 1) -> tuple[Table, Path]:
    """Targets at random pixels of ``files``, as a table and as the CSV ``spherex-spectrum`` reads."""
    table = make_targets(files, n, seed)
    path = work / f"targets-{len(files)}-{n}-{seed}.csv"
    table.write(path, format="ascii.csv", overwrite=True)
    return table, path


def pipeline(repo: str, catalogue: Path, prefix: str) -> int:
    """``spherex-spectrum --targets``: ingest the targets, build and run the graph, read the spectra."""
    result = measure_spectra(repo, targets=catalogue, output=None, collections="SPHEREx/*", run_prefix=prefix)
    return sum(len(spectrum) for spectrum in result.spectra.values())


def task_on_handles(repo: str, targets: Table) -> int:
    """Run the measurement task alone on deferred handles of the images that hold targets."""
    task = ForcedSpectrophotometryTask()
    measured = 0
    with Butler.from_config(repo) as butler:
        refs = butler.query_datasets("spectralImage", collections="SPHEREx/l2b-v20", explain=False)
        for ref in refs:
            handle = butler.getDeferred(ref)
            wcs = handle.get(component="wcs")
            x, y = wcs.world_to_pixel_values(targets["ra"], targets["dec"])
            rows, columns = wcs.array_shape
            if np.any((x > -0.5) & (x < columns - 0.5) & (y > -0.5) & (y < rows - 0.5)):
                run = task.run(handle, [targets], ref.dataId["exposure"], ref.dataId["detector"])
                measured += len(run.measurements)
    return measured


def whole_files(locations: list, targets: Table) -> dict:
    """Read each file whole (downloading it from an object store), find the targets on it, measure."""
    task = ForcedSpectrophotometryTask()
    return {where: len(task.run(read_whole(where), [targets], 0, 0).measurements) for where in locations}


def timed(before: Callable[[], None], work: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run ``before`` (not timed: cache state), then ``work``; return its value, wall and CPU seconds."""
    before()
    clear_layout_cache()
    TARGET_CATALOGUES.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    value = work()
    return value, time.perf_counter() - t0, time.process_time() - c0


def fit_costs(rows: list[tuple[int, int, float]]) -> tuple[float, float, float]:
    """Least-squares ``seconds = fixed + per_image * images + per_measurement * measurements``."""
    design = np.array([[1.0, images, measured] for images, measured, _ in rows])
    seconds = np.array([wall for *_, wall in rows])
    solution, *_ = np.linalg.lstsq(design, seconds, rcond=None)
    return tuple(float(v) for v in solution)


def bench_storage(storage: str, work: Path, files: list[Path], args: argparse.Namespace) -> dict:
    """Every contender on one kind of storage, for three target layouts; print times, ratios, costs."""
    with contextlib.ExitStack() as stack:
        if storage == "s3":
            repo, locations = stack.enter_context(
                s3_repo(work, files[0].parent, args.latency, args.bandwidth)
            )
            before = lambda: None  # noqa: E731
        else:
            repo, locations = local_repo(work, files[0].parent), files
            before = (
                (lambda: drop_page_cache(files)) if storage == "cold" else (lambda: warm_page_cache(files))
            )
        by_name = dict(zip(files, locations, strict=True))
        layouts = [(files[:1], max(5, args.targets // 20)), (files, args.targets // 4), (files, args.targets)]
        rows: dict[str, list] = {"a": [], "b": [], "c": [], "d": []}
        for index, (holding, n) in enumerate(layouts):
            table, csv = make_catalogue(holding, n, work, seed=index + 1)
            n_pipe, t_pipe, cpu_pipe = timed(before, lambda: pipeline(repo, csv, f"bench-{storage}-{index}"))
            n_task, t_task, _ = timed(before, lambda: task_on_handles(repo, table))
            per_file, t_all, cpu_all = timed(before, lambda: whole_files(locations, table))
            oracle = [by_name[path] for path in files if per_file[by_name[path]]]
            n_oracle, t_oracle, _ = timed(before, lambda: sum(whole_files(oracle, table).values()))
            n_all = sum(per_file.values())
            assert n_pipe == n_task == n_all == n_oracle, (n_pipe, n_task, n_all, n_oracle)
            images = len(oracle)
            rows["a"].append((images, n_pipe, t_pipe))
            rows["d"].append((images, n_task, t_task))
            rows["b"].append((len(files), n_all, t_all))
            rows["c"].append((images, n_oracle, t_oracle))
            print(
                f"  [{storage}] {n_pipe:5d} measurements on {images:2d} images: (a) pipeline {t_pipe:6.2f} s "
                f"(CPU {cpu_pipe:.2f}), (d) task {t_task:6.2f} s, (b) whole files {t_all:6.2f} s "
                f"(CPU {cpu_all:.2f}), (c) oracle {t_oracle:6.2f} s"
            )
    images, n, t_pipe = rows["a"][-1]
    t_all = rows["b"][-1][2]
    print(f"[{storage}] {n} measurements on {images} images ({len(files)} files):")
    print(f"  (a) pipeline (spherex-spectrum):      {t_pipe:7.2f} s {n / t_pipe:8.0f} measurements/s")
    print(f"  (b) script, every file whole:         {t_all:7.2f} s {n / t_all:8.0f} measurements/s")
    goal = {"warm": 1.0, "cold": 3.0, "s3": 10.0}[storage]
    print(f"  ratio (a) vs (b): {t_all / t_pipe:.2f}x (goal >= {goal:g}x)")
    if storage == "warm":
        print(f"  pipeline rate: {n / t_pipe:.0f} measurements/s on one core (goal >= 500)")
    for key, label in (("a", "pipeline"), ("d", "task alone"), ("c", "script, files with targets")):
        fixed, per_image, per_measurement = fit_costs(rows[key])
        print(
            f"  cost of {label}: {fixed:.3f} s + {per_image * 1e3:.1f} ms/image + "
            f"{per_measurement * 1e3:.2f} ms/measurement"
        )
    return rows


def fit_cpu_per_measurement(
    images: list[SPHERExLevel2Image], catalogue: Table, repeat: int
) -> tuple[float, int]:
    """Return the best CPU seconds per measurement of the task over images in memory, and the count."""
    task = ForcedSpectrophotometryTask()
    best, count = float("inf"), 0
    for _ in range(repeat):
        start = time.process_time()
        count = sum(len(task.run(image, [catalogue], 0, 0).measurements) for image in images)
        best = min(best, (time.process_time() - start) / max(count, 1))
    return best, count


def deep_field_images(work: Path, size: int, sources: int, neighbours: int) -> tuple[list, Table]:
    """Simulate a deep field (3 exposures); return its images, read whole, and its full catalogue."""
    ra, dec, seed = 150.0, 2.0, 7
    name = f"deep-{size}-{sources}-{neighbours}"
    simulate_deep_field(
        work / name, ra, dec, steps=1, sources=sources, size=size, seed=seed, neighbours=neighbours
    )
    images = [SPHERExLevel2Image.read(path) for path in sorted((work / name).glob("*.fits"))]
    return images, targets_table(deep_field_sources(ra, dec, sources, size, seed, neighbours))


def bench_joint_fit(work: Path, args: argparse.Namespace) -> float:
    """Print the CPU per measurement of joint fits (crowded field) over single fits (isolated field)."""
    half = args.joint_sources // 2
    isolated = deep_field_images(work, args.joint_size, args.joint_sources, 0)
    crowded = deep_field_images(work, args.joint_size, half, args.joint_sources - half)
    single, n_single = fit_cpu_per_measurement(*isolated, args.joint_repeat)
    joint, n_joint = fit_cpu_per_measurement(*crowded, args.joint_repeat)
    for label, count, cpu in (
        ("isolated field, single-source fits", n_single, single),
        ("crowded field, joint fits", n_joint, joint),
    ):
        print(f"[blends] {label}: {count} measurements, {cpu * 1e6:.0f} us CPU each")
    print(f"[blends] ratio crowded / isolated: {joint / single:.2f} (goal <= 1.5)")
    return joint / single


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 exposure (6 images), 200 targets")
    parser.add_argument("--exposures", type=int, default=2)
    parser.add_argument("--size", type=int, default=2040)
    parser.add_argument("--targets", type=int, default=400)
    parser.add_argument("--storage", choices=["warm", "cold", "s3", "all", "none"], default="all")
    parser.add_argument("--latency", type=float, default=0.03, help="seconds per S3 request (default 0.03)")
    parser.add_argument(
        "--bandwidth", type=float, default=50e6, help="S3 bytes/s of a response (default 50e6)"
    )
    parser.add_argument("--joint-size", type=int, default=512, help="pixels per side of the blend fields")
    parser.add_argument("--joint-sources", type=int, default=200, help="targets of each blend field")
    parser.add_argument("--joint-repeat", type=int, default=3, help="runs of each fit (best kept)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files here (default: temporary)")
    args = parser.parse_args()
    if args.quick:
        args.exposures, args.targets = 1, 200

    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        if args.storage == "none":
            bench_joint_fit(work, args)
            return
        files_dir = work / f"l2-{args.exposures}x{args.size}"
        if not files_dir.exists():
            t0 = time.perf_counter()
            simulate_level2(files_dir, exposures=args.exposures, size=args.size)
            print(
                f"simulated {args.exposures * 6} images of {args.size}^2 in {time.perf_counter() - t0:.0f} s"
            )
        files = sorted(files_dir.glob("*.fits"))
        size_mib = sum(p.stat().st_size for p in files) / 2**20
        print(
            f"{len(files)} Level-2 files ({size_mib:.0f} MiB), up to {args.targets} targets; "
            f"{os.cpu_count()} cores"
        )
        storages = ["warm", "cold", "s3"] if args.storage == "all" else [args.storage]
        for storage in storages:
            if storage == "cold" and not hasattr(os, "posix_fadvise"):
                print("[cold] skipped: this system has no posix_fadvise to drop the page cache")
                continue
            bench_storage(storage, work, files, args)
        bench_joint_fit(work, args)


if __name__ == "__main__":
    main()
