"""Parallel execution: ``bps submit`` with quantum clustering against ``pipetask run -j 1``.

    python benchmarks/bench_bps.py [--exposures 167] [--small 20] [--size 64] [--quick]

Simulates ``exposures`` x 6 raw/dark pairs of ``size`` x ``size`` pixels and ingests them.  Then, for a
small graph (the first ``small`` exposures) and for the whole day (``exposures`` x 6 quanta; 167 makes
1002, a SPHEREx day being ~3300), runs ExamplePipeline as whole commands, each timed from start to
finish: (a) ``pipetask run -j 1``; (b) ``bps submit bps/local-parsl-clustered.yaml``, which cuts the
quantum graph into as many clustered jobs as cores (Parsl's local site), each one ``pipetask run-qbb``
process running its share of the quanta, then registers the outputs.  Each command builds its own
quantum graph inside its time.  Prints the times, the speed-up of (b) over (a) at each size (target at
the day size: >= 1.6), and the break-even graph size from the two sizes (both grow linearly with the
number of quanta: T = fixed + N x per-quantum).

``--quick`` is 50 exposures (300 quanta) and 10 (60 quanta): a few minutes on an idle 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lsst.daf.butler import Butler

from simulated_repo import make_simulated_repo

ROOT = Path(__file__).parents[1]
PIPELINE = str(ROOT / "pipelines" / "ExamplePipeline.yaml")
BPS_YAML = str(ROOT / "bps" / "local-parsl-clustered.yaml")
BIN = Path(sys.executable).parent


def run(command: list[str], cwd: Path) -> float:
    """Run a command with the venv's scripts on PATH; return its wall-clock time."""
    # bps expands ${PWD} (submitPath, Parsl's run_dir); a subprocess started with cwd= keeps the caller's.
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PWD=str(cwd))
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        # The jobs' own logs are in the temporary directory, gone once this exits: show their ends.
        logs = "".join(
            f"\n--- {log}:\n{log.read_text()[-1500:]}"
            for log in sorted(cwd.glob("submit/*/*/logs/*/*.stderr"))
        )
        sys.exit(f"{' '.join(command[:2])} failed (exit {result.returncode}):\n{result.stderr[-3000:]}{logs}")
    return seconds


def pipetask_j1(repo: str, output: str, where: str, cwd: Path) -> float:
    return run(
        [str(BIN / "pipetask"), "run", "-j", "1", "-p", PIPELINE, "-b", repo, "-i", "rawexpr,darkr",
         "-o", output, "--register-dataset-types", "-d", where],
        cwd,
    )  # fmt: skip


def bps_clustered(repo: str, output: str, where: str, cwd: Path) -> float:
    return run(
        [str(BIN / "bps"), "submit", BPS_YAML, "-b", repo, "-i", "rawexpr,darkr", "-o", output, "-d", where],
        cwd,
    )  # fmt: skip


def count_outputs(repo: str, collection: str) -> int:
    with Butler.from_config(repo) as butler:
        return len(butler.query_datasets("postDark", collections=collection, explain=False, limit=None))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--exposures", type=int, default=167, help="exposures of the day-sized graph")
    parser.add_argument("--small", type=int, default=20, help="exposures of the small graph")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--quick", action="store_true", help="50 and 10 exposures (300 and 60 quanta)")
    args = parser.parse_args()
    if args.quick:
        args.exposures, args.small = 50, 10
    if not 0 < args.small < args.exposures:
        parser.error("--small must be between 1 and --exposures - 1")
    cores = os.cpu_count()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        repo = make_simulated_repo(work, args.exposures, args.size, seed=5)
        # Register the output dataset types once, so that neither contender pays for it.
        pipetask_j1(repo, "warmup", "exposure = 0 AND detector = 1", work)

        sizes = {"small": args.small, "day": args.exposures}
        times: dict[tuple[str, str], float] = {}
        for label, exposures in sizes.items():
            where = f"instrument = 'simulator' AND exposure < {exposures}"
            quanta = 6 * exposures
            times["j1", label] = pipetask_j1(repo, f"j1_{label}", where, work)
            times["bps", label] = bps_clustered(repo, f"bps_{label}", where, work)
            for who in ("j1", "bps"):
                produced = count_outputs(repo, f"{who}_{label}")
                if produced != quanta:
                    sys.exit(f"{who} on the {label} graph produced {produced} postDark, not {quanta}")

    print(
        f"ExamplePipeline on {args.size}x{args.size} images, {cores} cores; whole commands, quantum "
        "graph included; bps: local-parsl-clustered.yaml (2 clustered jobs)"
    )
    print(f"{'quanta':>7} {'pipetask -j 1':>14} {'bps clustered':>14} {'speed-up':>9}")
    for label, exposures in sizes.items():
        j1, bps = times["j1", label], times["bps", label]
        print(f"{6 * exposures:7d} {j1:13.1f}s {bps:13.1f}s {j1 / bps:8.2f}x")
    n_small, n_day = 6 * args.small, 6 * args.exposures
    fits = {}
    for who in ("j1", "bps"):
        per_quantum = (times[who, "day"] - times[who, "small"]) / (n_day - n_small)
        fits[who] = (times[who, "small"] - per_quantum * n_small, per_quantum)
        print(f"{who:>4}: {fits[who][0]:6.1f} s fixed + {1000 * per_quantum:6.1f} ms per quantum")
    (fixed_j1, slope_j1), (fixed_bps, slope_bps) = fits["j1"], fits["bps"]
    if slope_bps < slope_j1:
        print(f"break-even graph size: {(fixed_bps - fixed_j1) / (slope_j1 - slope_bps):.0f} quanta")
    else:
        print("break-even graph size: none (bps is not faster per quantum here)")
    speed_up = times["j1", "day"] / times["bps", "day"]
    print(f"speed-up bps clustered / pipetask -j 1 at {n_day} quanta: {speed_up:.2f} (target >= 1.6)")


if __name__ == "__main__":
    main()
