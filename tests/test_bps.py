"""``bps submit`` of ExamplePipeline with the shipped ``bps/local-parsl.yaml``: every quantum a Parsl task.

BPS builds the quantum graph, runs each quantum as its own ``pipetask run-qbb`` process through Parsl's
local site, then registers the outputs; the outputs must be those of ``pipetask run``.  Two arrays of
one exposure (2 quanta) keep it short: each quantum is a process start.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from lsst.daf.butler import Butler

from spherex.script import ingest_simulated

from .backend_repos import make_backend_repo
from .conftest import venv_script
from .test_example_pipeline import PIPELINE, pipetask

BPS_YAML = str(Path(__file__).parents[1] / "bps" / "local-parsl.yaml")
DATA_QUERY = "instrument = 'simulator' AND exposure = 1 AND detector IN (2, 5)"
N_QUANTA = 2


def bps_submit(repo: str, output: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``bps submit`` as a user would, from ``cwd``, with the venv's commands on PATH."""
    bindir = str(Path(venv_script("pipetask")).parent)
    # bps expands ${PWD} (submitPath, Parsl's run_dir); a subprocess started with cwd= keeps the caller's.
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}", PWD=str(cwd))
    result = subprocess.run(
        [venv_script("bps"), "submit", BPS_YAML, "-b", repo, "-i", "rawexpr,darkr", "-o", output,
         "-d", DATA_QUERY],
        cwd=cwd, capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"bps submit failed (exit {result.returncode}):\n{log[-5000:]}"
    return result


def compare_outputs(repo: str, bps_collection: str, reference_collection: str) -> None:
    """Check that every postDark of the BPS run equals the reference ``pipetask run``'s, pixel by pixel."""
    with Butler.from_config(repo) as butler:
        produced = {
            (ref.dataId["exposure"], ref.dataId["detector"]): ref
            for ref in butler.query_datasets("postDark", collections=bps_collection)
        }
        expected = {
            (ref.dataId["exposure"], ref.dataId["detector"]): ref
            for ref in butler.query_datasets("postDark", collections=reference_collection)
        }
        assert len(produced) == N_QUANTA and produced.keys() == expected.keys()
        for key, ref in produced.items():
            ours, theirs = butler.get(ref), butler.get(expected[key])
            np.testing.assert_array_equal(ours.data, theirs.data)
            np.testing.assert_array_equal(ours.uncertainty.array, theirs.uncertainty.array)
            np.testing.assert_array_equal(ours.flags, theirs.flags)
            assert ours.meta["SUBDSID"] == theirs.meta["SUBDSID"]  # the same dark


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param(("sqlite", "posix"), id="sqlite-posix"),
        pytest.param(("postgres", "s3"), id="postgres-s3", marks=pytest.mark.slow),
    ],
)
def test_bps_submit_local_parsl(
    backend: tuple[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    simulated_dir: Path,
) -> None:
    pytest.importorskip("lsst.ctrl.bps.parsl", reason="bps tests need pip install 'spherex-butler-poc[bps]'")
    b = make_backend_repo(backend, tmp_path, request, monkeypatch, repo_on_s3=backend == ("postgres", "s3"))
    transfer = "copy" if b.datastore == "s3" else "auto"
    assert ingest_simulated(b.repo, [str(simulated_dir)], transfer=transfer).ok
    assert ingest_simulated(
        b.repo, [str(simulated_dir)], regex="dark_current.fits", ingest_type="dark", transfer=transfer
    ).ok

    result = bps_submit(b.repo, "bps", tmp_path)
    log = result.stdout + result.stderr
    # Every quantum ran as its own Parsl task, and none failed.
    shutdown = re.findall(r"'tasks_failed_count': (\d+), 'tasks_completed_count': (\d+)", log)
    assert shutdown and shutdown[-1] == ("0", str(N_QUANTA)), log[-3000:]
    quantum_logs = list((tmp_path / "submit" / "bps").glob("*/logs/subtract/*/*_subtract_*.stdout"))
    assert len(quantum_logs) == N_QUANTA
    assert (tmp_path / "submit" / "parsl_runinfo").is_dir()

    pipetask(
        "run", "-p", PIPELINE, "-b", b.repo, "-i", "rawexpr,darkr", "-o", "reference", "-d", DATA_QUERY,
        cwd=tmp_path,
    )  # fmt: skip
    compare_outputs(b.repo, "bps", "reference")
