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
CLUSTERED_YAML = str(Path(__file__).parents[1] / "bps" / "local-parsl-clustered.yaml")
DATA_QUERY = "instrument = 'simulator' AND exposure = 1 AND detector IN (2, 5)"
N_QUANTA = 2


def bps_submit(
    repo: str, output: str, cwd: Path, yaml: str = BPS_YAML, data_query: str = DATA_QUERY
) -> subprocess.CompletedProcess:
    """Run ``bps submit`` as a user would, from ``cwd``, with the venv's commands on PATH."""
    bindir = str(Path(venv_script("pipetask")).parent)
    # bps expands ${PWD} (submitPath, Parsl's run_dir); a subprocess started with cwd= keeps the caller's.
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}", PWD=str(cwd))
    result = subprocess.run(
        [venv_script("bps"), "submit", yaml, "-b", repo, "-i", "rawexpr,darkr", "-o", output,
         "-d", data_query],
        cwd=cwd, capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"bps submit failed (exit {result.returncode}):\n{log[-5000:]}"
    return result


def compare_outputs(
    repo: str, bps_collection: str, reference_collection: str, n_quanta: int = N_QUANTA
) -> None:
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
        assert len(produced) == n_quanta and produced.keys() == expected.keys()
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


@pytest.mark.slow
def test_bps_submit_clustered_runs_one_job_per_core(repo: str, tmp_path: Path, simulated_dir: Path) -> None:
    """``bps/local-parsl-clustered.yaml``: all quanta of the graph in two clustered jobs (one per core)."""
    pytest.importorskip("lsst.ctrl.bps.parsl", reason="bps tests need pip install 'spherex-butler-poc[bps]'")
    assert ingest_simulated(repo, [str(simulated_dir)]).ok
    assert ingest_simulated(repo, [str(simulated_dir)], regex="dark_current.fits", ingest_type="dark").ok
    query = "instrument = 'simulator' AND exposure IN (0, 1)"
    n_quanta = 12

    result = bps_submit(repo, "clustered", tmp_path, yaml=CLUSTERED_YAML, data_query=query)
    log = result.stdout + result.stderr
    # Two Parsl tasks ran the twelve quanta: one `pipetask run-qbb` process per cluster, none failed.
    shutdown = re.findall(r"'tasks_failed_count': (\d+), 'tasks_completed_count': (\d+)", log)
    assert shutdown and shutdown[-1] == ("0", "2"), log[-3000:]
    job_logs = sorted((tmp_path / "submit" / "clustered").glob("*/logs/subtractAll/*.stderr"))
    assert len(job_logs) == 2
    # Each job's log (pipetask run-qbb logs to stderr) shows it ran half of the quanta, in one process.
    executed = [re.findall(r"Execution of task 'subtract' on quantum", p.read_text()) for p in job_logs]
    assert sorted(len(e) for e in executed) == [n_quanta // 2, n_quanta // 2]

    pipetask(
        "run", "-p", PIPELINE, "-b", repo, "-i", "rawexpr,darkr", "-o", "reference", "-d", query,
        cwd=tmp_path,
    )  # fmt: skip
    compare_outputs(repo, "clustered", "reference", n_quanta=n_quanta)


def test_bps_pipetask_reads_interleaved_zip_members_correctly(tmp_path: Path) -> None:
    """The job entry point's zip fix: a seek in one stored member is not moved by reads of another.

    CPython's own reproducer of python/cpython#127847; quantum graph files are such archives, and
    clustered BPS jobs read them this way.
    """
    import zipfile

    from spherex.bps.pipetask import patch_zipfile_shared_seek

    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("a.txt", "123")
        zf.writestr("b.txt", "456")
    patch_zipfile_shared_seek()
    with zipfile.ZipFile(archive) as zf, zf.open("a.txt") as a, zf.open("b.txt") as b:
        assert a.read(1) == b"1"
        b.seek(1)
        assert b.read(1) == b"5"
        assert a.read() == b"23"


def test_run_qbb_reads_the_repository_configuration_once(repo: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The clustered jobs' entry point reads ``butler.yaml`` once per process, not once per quantum,
    and each quantum still gets a butler, and a configuration, of its own."""
    pytest.importorskip("lsst.ctrl.mpexec")
    import importlib

    from lsst.daf.butler import ButlerConfig, DimensionUniverse, Quantum

    from spherex.bps.qbb import reuse_butler_config

    reads: list[object] = []
    original_init = ButlerConfig.__init__

    def counting_init(self: ButlerConfig, other: object = None, *args: object, **kwargs: object) -> None:
        if not isinstance(other, ButlerConfig):
            reads.append(other)  # a reading of the repository, not a copy of one
        original_init(self, other, *args, **kwargs)

    monkeypatch.setattr(ButlerConfig, "__init__", counting_init)
    run_qbb = importlib.import_module("lsst.ctrl.mpexec.cli.script.run_qbb")
    monkeypatch.setattr(run_qbb._QBBFactory, "__call__", run_qbb._QBBFactory.__call__)  # undone after
    reuse_butler_config()
    reuse_butler_config()  # idempotent: one wrapper, not two
    with Butler.from_config(repo) as butler:
        universe: DimensionUniverse = butler.dimensions
    reads.clear()
    factory = run_qbb._QBBFactory(repo, universe, {}, None)
    butlers = [factory(Quantum(taskName="spherex.tasks.SubtractTask")) for _ in range(3)]

    assert reads == [repo]
    # Each quantum's butler has its own datastore (and the copy of the configuration it was built from).
    assert len({id(b._datastore) for b in butlers}) == 3
    assert all(str(b._datastore.root).rstrip("/") == f"file://{repo}" for b in butlers)
