"""Framework overhead of ``pipetask run`` for ExamplePipeline against a plain astropy script.

    python benchmarks/bench_pipeline.py [--exposures 3] [--size 2040] [--repeat 3] [--quick]

Simulates ``exposures`` x 6 raw/dark pairs and ingests them.  Each contender then processes the first
exposure (6 quanta), and, separately, all of them: (a) a plain astropy script doing the same reads,
subtraction and writes (one ``python`` process), (b) ``pipetask run -j 1``, (c) ``pipetask run -j 2``,
each as a whole command.  The per-quantum time is the difference of the two runs divided by the
difference in quanta, so that process start-up, imports and quantum-graph building (paid once per
command) cancel out.  A difference of two runs is noisy (one slow write-back of the page cache moves it
by tens of percent), so every contender runs its pair ``repeat`` times, the contenders taking turns, and
the medians are compared; before each clock starts the file system is synced, so that no command pays
for the previous one's writes.  Prints per-quantum wall-clock and CPU times (the commands' own, from
their resource usage: on a loaded machine CPU time is the steadier measure) and the ratios.
Targets: pipetask -j 1 <= 1.5x the plain script; -j 2 at least 1.6x faster than -j 1 (see
benchmarks/bench_bps.py for the parallel route that does speed up: BPS with quantum clustering).

``--quick`` is 2 exposures (12 quanta) of 2040x2040 without ``-j 2``: about 3 minutes.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from lsst.daf.butler import Butler

from simulated_repo import make_simulated_repo

PIPELINE = str(Path(__file__).parents[1] / "pipelines" / "ExamplePipeline.yaml")
BIN = Path(sys.executable).parent


def plain_astropy(files: Path, out: Path, exposures: str = "*") -> int:
    """Raw - dark with astropy only, written in the same layout; returns the number of images."""
    out.mkdir()
    n = 0
    for raw_path in sorted(files.glob(f"sim_exposure_{exposures}_array_?.fits")):
        dark_path = raw_path.with_name(raw_path.stem + "_dark_current.fits")
        with fits.open(raw_path) as raw, fits.open(dark_path) as dark:
            image = raw["IMAGE"].data - dark["IMAGE"].data
            variance = raw["VARIANCE"].data + dark["VARIANCE"].data
            flags = raw["FLAGS"].data | dark["FLAGS"].data
            hdus = fits.HDUList(
                [
                    fits.PrimaryHDU(header=raw[0].header),
                    fits.ImageHDU(image.astype(np.float32), header=raw["IMAGE"].header, name="IMAGE"),
                    fits.ImageHDU(flags, header=raw["FLAGS"].header, name="FLAGS"),
                    fits.ImageHDU(
                        variance.astype(np.float32), header=raw["VARIANCE"].header, name="VARIANCE"
                    ),
                ]
            )
            hdus.writeto(out / raw_path.name)
        n += 1
    return n


def children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def plain_script(files: Path, out: Path, exposures: str) -> tuple[float, float]:
    """Run `plain_astropy` as its own ``python`` process (imports included, as for pipetask)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from bench_pipeline import plain_astropy; "
        "from pathlib import Path; plain_astropy(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])"
    )
    os.sync()
    start, cpu = time.perf_counter(), children_cpu()
    subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(files), str(out), exposures], check=True
    )
    return time.perf_counter() - start, children_cpu() - cpu


def pipetask_run(repo: str, output: str, jobs: int, where: str = "") -> tuple[float, float]:
    """Run ``pipetask run`` as a whole command; return its wall-clock and CPU seconds."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    os.sync()
    start, cpu = time.perf_counter(), children_cpu()
    subprocess.run(
        [
            str(BIN / "pipetask"),
            "run",
            "-j",
            str(jobs),
            "-p",
            PIPELINE,
            "-b",
            repo,
            "-i",
            "rawexpr,darkr",
            "-o",
            output,
            "--register-dataset-types",
            "-d",
            where,
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    return time.perf_counter() - start, children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exposures", type=int, default=3)
    parser.add_argument("--size", type=int, default=2040)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each contender's pair (median)")
    parser.add_argument("--quick", action="store_true", help="2 exposures, no -j 2")
    args = parser.parse_args()
    if args.quick:
        args.exposures = 2
    if args.exposures < 2:
        parser.error("--exposures must be at least 2 (per-quantum times are differences of two runs)")
    job_counts = (1,) if args.quick else (1, 2)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        repo = make_simulated_repo(work, args.exposures, args.size, seed=3)

        sim = work / "sim"
        n = 6 * args.exposures
        runs: dict[str, list[tuple[tuple[float, float], tuple[float, float]]]] = {}
        for attempt in range(args.repeat):
            # The contenders take turns, so that a slow spell of the machine is shared among them.
            runs.setdefault("plain astropy script", []).append(
                (
                    plain_script(sim, work / f"plain_one_{attempt}", "000000"),
                    plain_script(sim, work / f"plain_all_{attempt}", "*"),
                )
            )
            for jobs in job_counts:
                runs.setdefault(f"pipetask run -j {jobs}", []).append(
                    (
                        pipetask_run(repo, f"bench_j{jobs}_one_{attempt}", jobs, "exposure = 0"),
                        pipetask_run(repo, f"bench_j{jobs}_all_{attempt}", jobs),
                    )
                )
        with Butler.from_config(repo) as butler:
            for jobs in job_counts:
                for attempt in range(args.repeat):
                    outputs = butler.query_datasets("postDark", collections=f"bench_j{jobs}_all_{attempt}")
                    assert len(outputs) == n

    extra = n - 6

    def median(values: list[float]) -> float:
        return statistics.median(values)

    # Per contender: the median over its runs of the 6-quantum time, the all-quanta time, and the
    # per-quantum difference (the median of the differences, not the difference of the medians).
    times = {
        name: (
            (median([one[0] for one, _ in pairs]), median([one[1] for one, _ in pairs])),
            (median([every[0] for _, every in pairs]), median([every[1] for _, every in pairs])),
        )
        for name, pairs in runs.items()
    }
    per_quantum = {
        name: (
            median([(every[0] - one[0]) / extra for one, every in pairs]),
            median([(every[1] - one[1]) / extra for one, every in pairs]),
        )
        for name, pairs in runs.items()
    }
    spread = {
        name: (min((e[0] - o[0]) / extra for o, e in pairs), max((e[0] - o[0]) / extra for o, e in pairs))
        for name, pairs in runs.items()
    }
    print(
        f"{args.exposures} exposures x 6 quanta of {args.size}x{args.size} images; per quantum = "
        f"(time for all {n} - time for the first 6) / {extra}; medians of {args.repeat} runs each"
    )
    header = f"{'6 quanta':>9} {f'{n} quanta':>10} {'per quantum':>12} {'(min-max)':>15} {'CPU/quantum':>12}"
    print(f"{'':24} {header}")
    for name, (one, every) in times.items():
        wall, cpu = per_quantum[name]
        low, high = spread[name]
        print(f"{name:24} {one[0]:8.2f}s {every[0]:9.2f}s {wall:11.3f}s {low:6.3f}-{high:6.3f}s {cpu:11.3f}s")
    plain, j1 = per_quantum["plain astropy script"], per_quantum["pipetask run -j 1"]
    print(
        f"ratio pipetask -j 1 / plain per quantum: {j1[0] / plain[0]:.2f} wall, {j1[1] / plain[1]:.2f} CPU "
        "(target <= 1.5)"
    )
    if "pipetask run -j 2" in per_quantum:
        j2 = per_quantum["pipetask run -j 2"]
        print(f"speed-up -j 2 over -j 1 per quantum:     {j1[0] / j2[0]:.2f} wall (target >= 1.6)")


if __name__ == "__main__":
    main()
