"""How the pipeline's cost grows with the catalogue: 10 to 10,000 targets over 6 and 24 images.

    python benchmarks/bench_growth.py [--targets 10 100 1000 10000] [--exposures 1 4] [--size 2040]

For each number of images (``exposures`` x 6 full-size Level-2 files, simulated once and ingested by
symbolic link) and each catalogue size (targets at random pixels of every image), runs
``spherex-spectrum --targets`` (`measure_spectra`) in a fresh child process and prints its wall time,
its measurements, the cost per measurement and the child's peak resident memory.  The per-measurement
cost must stay flat (no term in targets x images) and the peak below 2 GB at 10,000 targets.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_spectra import make_catalogue  # noqa: E402
from spectra_storage import local_repo  # noqa: E402
from spherex.simulator.level2 import simulate_level2  # noqa: E402

CHILD = """
import json, resource, sys, time
from spherex.script.spectrum import measure_spectra
start = time.perf_counter()
result = measure_spectra(sys.argv[1], targets=sys.argv[2], output=None, run_prefix=sys.argv[3])
wall = time.perf_counter() - start
measured = sum(len(spectrum) for spectrum in result.spectra.values())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"wall": wall, "measured": measured, "peak": peak}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--exposures", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--size", type=int, default=2040)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files here (default: temporary)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        print("images targets measurements   wall s  ms/measurement  peak MB")
        for exposures in args.exposures:
            files_dir = work / f"l2-{exposures}x{args.size}"
            if not files_dir.exists():
                simulate_level2(files_dir, exposures=exposures, size=args.size)
            files = sorted(files_dir.glob("*.fits"))
            repo = local_repo(work, files_dir)
            for n in args.targets:
                _, csv = make_catalogue(files, n, work, seed=n)
                child = subprocess.run(
                    [sys.executable, "-c", CHILD, repo, str(csv), f"growth-{n}-{time.time_ns()}"],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                row = json.loads(child.stdout.strip().splitlines()[-1])
                per = row["wall"] / max(row["measured"], 1) * 1e3
                print(
                    f"{len(files):6d} {n:7d} {row['measured']:12d} {row['wall']:8.2f} {per:15.2f} "
                    f"{row['peak'] / 1e6:8.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
