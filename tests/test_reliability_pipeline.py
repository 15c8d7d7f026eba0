"""Two ``pipetask run`` at once on one SQLite repository, into different output collections.

(A corrupt input failing only its quantum, and ``--extend-run --skip-existing`` completing the run
once it is fixed, are in ``test_example_pipeline.py::test_corrupt_input_fails_only_its_quantum``.)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from lsst.daf.butler import Butler

from .conftest import venv_script
from .test_example_pipeline import N_QUANTA, PIPELINE, check_outputs, ingested_repo


def pipetask_process(output: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [venv_script("pipetask"), "run", "-p", PIPELINE, "-b", "DATA", "--register-dataset-types",
         "-i", "rawexpr,darkr", "-o", output],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def test_concurrent_pipetask_runs_into_different_outputs(tmp_path: Path, simulated_dir: Path) -> None:
    repo = ingested_repo(tmp_path, simulated_dir)
    outputs = ["first", "second"]
    processes = {output: pipetask_process(output, tmp_path) for output in outputs}
    failed = []
    for output, process in processes.items():
        out, err = process.communicate(timeout=600)
        if process.returncode != 0:
            # Allowed: a clear message that the database was busy, and nothing half-registered.
            assert "database is locked" in err or "already exists" in err, err[-3000:]
            failed.append(output)
    for output in failed:
        rerun = pipetask_process(output, tmp_path)
        _, err = rerun.communicate(timeout=600)
        assert rerun.returncode == 0, err[-3000:]
    print(f"concurrent runs that had to be re-run: {failed or 'none'}")
    with Butler.from_config(repo) as b:
        for output in outputs:
            refs = b.query_datasets("postDark", collections=output, explain=False, limit=None)
            assert len(refs) == N_QUANTA
            assert len({r.dataId for r in refs}) == N_QUANTA  # nothing doubled
    for output in outputs:
        check_outputs(repo, output, simulated_dir)
