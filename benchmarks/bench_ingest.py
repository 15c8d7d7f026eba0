"""Ingest speed: ``ingest-simulated`` against daf_butler's ``ingest-files`` and a plain copy.

    python benchmarks/bench_ingest.py [--exposures 100] [--size 64] [--quick] [--against REF]

Simulates ``exposures`` x 6 raw files, then ingests them (a) with ``ingest_simulated`` (files checked,
headers read, exposure and region records inserted, datasets ingested) for ``--transfer symlink`` and
``direct``; (b) with daf_butler's ``ingest_files`` (what ``butler ingest-files`` runs) on the same files
into a fresh repository, *together with* inserting the same exposure and region records, both inside
the clock (the records are read from (a)'s repository before the clock starts: ``ingest-files`` is
given them ready-made, it does not derive them from the files); (c) by copying the files.  Prints files
per second, CPU seconds, and the ratio of ingest-simulated's rate to ingest-files' by wall-clock and by
CPU time (target: >= 1.0).

``--against REF`` also times an earlier version of this repository's code on the same files
(``git archive REF python``, imported through ``PYTHONPATH``, so with that version's own dimension
universe and configuration): ``ingest_simulated(..., transfer="direct")`` of each version in a fresh
process, the two taking turns three times, and prints the median files per second of each and their
ratio.  ``--against aa357c1`` is the code of 2026-11-25, the baseline of issue 15's "2x" goal.

``--quick`` is 50 exposures (300 files), about a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from astropy.table import Table
from lsst.daf.butler import Butler, DatasetType
from lsst.daf.butler.script import createRepo, ingest_files

from spherex.instrument import SimulatorInstrument
from spherex.script import ingest_simulated
from spherex.simulator import simulate

SEED = "resource://spherex/configs/butler.yaml"
DIMS = "resource://spherex/configs/dimensions.yaml"


def new_repo(root: Path) -> str:
    createRepo(str(root), seed_config=SEED, dimension_config=DIMS, override=True)
    with Butler.from_config(str(root), writeable=True) as butler:
        SimulatorInstrument().register(butler.registry)
    return str(root)


def timed(work) -> tuple[float, float]:
    """Return the wall-clock and CPU seconds of ``work()`` (everything runs in this process)."""
    start, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - start, time.process_time() - cpu


# Run in a fresh process by `versions_compared`: one version's ingest of the files, timed inside.
_INGEST_IN_PROCESS = """
import json, resource, sys, time
import spherex
from lsst.daf.butler import Butler
from lsst.daf.butler.script import createRepo
from spherex.instrument import SimulatorInstrument
from spherex.script import ingest_simulated
if __name__ == "__main__":
    files, repo = sys.argv[1], sys.argv[2]
    createRepo(repo, seed_config="resource://spherex/configs/butler.yaml",
               dimension_config="resource://spherex/configs/dimensions.yaml", override=True)
    with Butler.from_config(repo, writeable=True) as butler:
        SimulatorInstrument().register(butler.registry)
    start, cpu = time.perf_counter(), time.process_time()
    report = ingest_simulated(repo, [files], transfer="direct")
    print(json.dumps({"module": spherex.__file__, "files": len(report.ingested),
                      "wall": time.perf_counter() - start, "cpu": time.process_time() - cpu}))
"""


def versions_compared(ref: str, files_dir: Path, work: Path) -> dict[str, dict[str, float]]:
    """Time ``ingest_simulated`` of the code at git ``ref`` and of this checkout, taking turns."""
    root = Path(__file__).parents[1]
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", ref, "python"], check=True, capture_output=True
    ).stdout
    old = work / f"code-{ref}"
    old.mkdir()
    (old / "code.tar").write_bytes(archive)
    with tarfile.open(old / "code.tar") as tar:
        tar.extractall(old, filter="data")
    versions = {ref: str(old / "python"), "this checkout": str(root / "python")}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
    for attempt in range(3):
        for name, python_dir in versions.items():
            env = dict(os.environ, PYTHONPATH=python_dir)
            repo = work / f"versions-{attempt}-{len(runs[name])}-{name.replace(' ', '_')}"
            result = subprocess.run(
                [sys.executable, "-c", _INGEST_IN_PROCESS, str(files_dir), str(repo)],
                check=True, capture_output=True, text=True, env=env, cwd=work,
            )  # fmt: skip
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            if not figures["module"].startswith(python_dir):
                sys.exit(f"{name}: imported {figures['module']}, not the code under {python_dir}")
            runs[name].append(figures)
            shutil.rmtree(repo)
    return {
        name: {
            "files_per_second": statistics.median(r["files"] / r["wall"] for r in found),
            "cpu": statistics.median(r["cpu"] for r in found),
        }
        for name, found in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exposures", type=int, default=100)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="50 exposures (300 files)")
    parser.add_argument("--against", metavar="REF", help="also time the code at this git ref")
    args = parser.parse_args()
    if args.quick:
        args.exposures = 50

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files_dir = work / "simulated"
        simulate(files_dir, exposures=args.exposures, size=args.size, seed=1, workers=2)
        raws = sorted(files_dir.glob("sim_exposure_*_array_?.fits"))
        n = len(raws)
        print(f"{n} raw files ({args.exposures} exposures x 6 arrays, {args.size}x{args.size} pixels)")

        results = {}
        for transfer in ("symlink", "direct"):
            repo = new_repo(work / f"ours-{transfer}")
            results[f"ingest-simulated --transfer {transfer}"] = timed(
                lambda: ingest_simulated(repo, [str(files_dir)], transfer=transfer)
            )

            # daf_butler's ingest-files on the same files, with the same exposure and region records
            # inserted inside its clock (read from our repository beforehand: that part is not timed).
            theirs = new_repo(work / f"theirs-{transfer}")
            with Butler.from_config(repo) as source:
                records = {
                    element: list(source.query_dimension_records(element))
                    for element in ("exposure", "exposure_detector_region")
                }
            with Butler.from_config(theirs, writeable=True) as target:
                target.registry.registerDatasetType(
                    DatasetType(
                        "rawexp",
                        ("instrument", "exposure", "detector"),
                        "SPHERExImage",
                        universe=target.dimensions,
                    )
                )
            table = Table(
                {
                    "file": [str(p) for p in raws],
                    "exposure": [int(p.name.split("_")[2]) for p in raws],
                    "detector": [int(p.name.split("_")[4][0]) for p in raws],
                }
            )
            table_file = work / f"files-{transfer}.ecsv"
            table.write(table_file)

            def insert_records_then_ingest_files(theirs: str = theirs, table_file: Path = table_file) -> None:
                with Butler.from_config(theirs, writeable=True) as target, target.transaction():
                    for element, rows in records.items():
                        target.registry.insertDimensionData(element, *rows)
                ingest_files(
                    theirs,
                    "rawexp",
                    "rawexpr",
                    str(table_file),
                    data_id=("instrument=simulator",),
                    formatter="spherex.formatters.SPHERExImageFormatter",
                    transfer=transfer,
                )

            results[f"ingest-files --transfer {transfer}"] = timed(insert_records_then_ingest_files)

        copy_dir = work / "copy"
        copy_dir.mkdir()
        results["plain copy"] = timed(lambda: [shutil.copy(p, copy_dir) for p in raws])

        print(f"{'':40s} {'wall':>8} {'':>13} {'CPU':>8}")
        for name, (seconds, cpu) in results.items():
            print(f"{name:40s} {seconds:7.2f} s {n / seconds:8.1f} files/s {cpu:7.2f} s")
        # On a loaded machine wall-clock times swing with the other processes; the CPU times of this
        # single-threaded process do not, so both ratios are printed.
        for transfer in ("symlink", "direct"):
            ours = results[f"ingest-simulated --transfer {transfer}"]
            theirs = results[f"ingest-files --transfer {transfer}"]
            print(
                f"ratio ingest-simulated / (ingest-files + records) rate, {transfer}: "
                f"{theirs[0] / ours[0]:.2f} wall, {theirs[1] / ours[1]:.2f} CPU (target >= 1.0)"
            )

        if args.against:
            compared = versions_compared(args.against, files_dir, work)
            print("ingest_simulated --transfer direct, each version in its own process (median of 3):")
            for name, figures in compared.items():
                print(f"  {name:20s} {figures['files_per_second']:7.1f} files/s {figures['cpu']:6.2f} CPU-s")
            gain = compared["this checkout"]["files_per_second"] / compared[args.against]["files_per_second"]
            print(f"speed-up of this checkout over {args.against}: {gain:.2f}x (target >= 2)")


if __name__ == "__main__":
    main()
