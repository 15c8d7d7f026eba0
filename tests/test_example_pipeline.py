"""The original README's ``pipetask`` workflow, end to end, on a repository made by ingest-simulated."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from lsst.ctrl.mpexec import SimplePipelineExecutor
from lsst.daf.butler import Butler

from spherex.script import ingest_simulated

from .conftest import SIM_EXPOSURES, make_repo, venv_script

PIPELINE = str(Path(__file__).parents[1] / "pipelines" / "ExamplePipeline.yaml")
N_QUANTA = SIM_EXPOSURES * 6


def pipetask(*args: str, cwd: Path, expect: int = 0) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(venv_script('pipetask')).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        [venv_script("pipetask"), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == expect, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def butler_cmd(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        [venv_script("butler"), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def ingested_repo(root: Path, simulated: Path) -> str:
    repo = make_repo(root / "DATA")
    assert ingest_simulated(repo, [str(simulated)]).ok
    assert ingest_simulated(repo, [str(simulated)], regex="dark_current.fits", ingest_type="dark").ok
    return repo


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory, simulated_dir: Path) -> Path:
    """A repository processed as the README says: qgraph, then run into subtractr."""
    work = tmp_path_factory.mktemp("pipeline")
    ingested_repo(work, simulated_dir)
    pipetask(
        "qgraph",
        "-p",
        PIPELINE,
        "--qgraph-dot",
        "qgraph.dot",
        "-b",
        "DATA",
        "-i",
        "rawexpr,darkr",
        "-o",
        "subtractr",
        cwd=work,
    )
    pipetask(
        "run",
        "-p",
        PIPELINE,
        "-b",
        "DATA",
        "--register-dataset-types",
        "-i",
        "rawexpr,darkr",
        "-o",
        "subtractr",
        cwd=work,
    )
    return work


def check_outputs(repo: str, collection: str, simulated: Path) -> None:
    """Compare every postDark with raw - dark computed with plain astropy from the simulator's files."""
    with Butler.from_config(repo, collections=collection) as b:
        outputs = b.query_datasets("postDark")
        assert len(outputs) == N_QUANTA
        for ref in outputs:
            exposure, detector = ref.dataId["exposure"], ref.dataId["detector"]
            raw = fits.open(simulated / f"sim_exposure_{exposure:06d}_array_{detector}.fits")
            dark = fits.open(simulated / f"sim_exposure_{exposure:06d}_array_{detector}_dark_current.fits")
            result = b.get(ref)
            expected = raw["IMAGE"].data - dark["IMAGE"].data
            np.testing.assert_allclose(result.data, expected, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(
                result.uncertainty.array, raw["VARIANCE"].data + dark["VARIANCE"].data, rtol=1e-6
            )
            np.testing.assert_array_equal(result.flags, raw["FLAGS"].data | dark["FLAGS"].data)
            # The output records the dark it used: the one valid at the exposure's time.
            (record,) = b.query_dimension_records("exposure", data_id=ref.dataId)
            used = b.find_dataset(
                "dark",
                collections="darkr",
                timespan=record.timespan,
                instrument="simulator",
                detector=detector,
            )
            header = result.meta
            assert header["SUBDSID"] == str(used.id)
            assert any("dark" in str(h) for h in header["HISTORY"])
            # The input's cards are kept.
            assert header["OBSID"] == raw[0].header["OBSID"]


def test_qgraph_dot(processed: Path) -> None:
    dot = (processed / "qgraph.dot").read_text()
    assert dot.startswith("digraph")
    assert len(re.findall(r"SubtractTask|subtract", dot)) >= N_QUANTA
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tpdf", "qgraph.dot", "-o", "qgraph.pdf"], cwd=processed, check=True)
        assert (processed / "qgraph.pdf").read_bytes().startswith(b"%PDF")


def test_pipetask_run_outputs(processed: Path, simulated_dir: Path) -> None:
    check_outputs(str(processed / "DATA"), "subtractr", simulated_dir)


def test_rerun_replace_and_query_collections(processed: Path, simulated_dir: Path) -> None:
    before = butler_cmd("query-collections", "DATA", "--flatten-chains", "subtractr", cwd=processed)
    pipetask(
        "run",
        "-p",
        PIPELINE,
        "-b",
        "DATA",
        "-o",
        "subtractr",
        "--replace-run",
        "--prune-replaced=purge",
        cwd=processed,
    )
    after = butler_cmd("query-collections", "DATA", "--flatten-chains", "subtractr", cwd=processed)
    runs_before = set(re.findall(r"subtractr/\S+", before))
    runs_after = set(re.findall(r"subtractr/\S+", after))
    assert len(runs_after) == 1 and runs_after != runs_before  # the old run was replaced ...
    everything = butler_cmd("query-collections", "DATA", cwd=processed)
    assert not runs_before & set(re.findall(r"subtractr/\S+", everything))  # ... and purged
    chained = butler_cmd("query-collections", "DATA", "--collection-type", "CHAINED", cwd=processed)
    top_level = [line.split() for line in chained.splitlines()[2:] if line and not line.startswith(" ")]
    assert top_level == [["subtractr", "CHAINED"]]
    assert {"rawexpr", "darkr"} <= set(after.split())
    check_outputs(str(processed / "DATA"), "subtractr", simulated_dir)


# ctrl_mpexec spawns a fresh Python for each of the 18 quanta (~4.7 CPU-s each): a fifth of the default
# test set's CPU time for one test, so it runs with -m slow (-j 1 runs the same task in every other test).
@pytest.mark.slow
def test_pipetask_run_parallel(processed: Path, simulated_dir: Path) -> None:
    pipetask(
        "run", "-j", "2", "-p", PIPELINE, "-b", "DATA", "-i", "rawexpr,darkr", "-o", "parallel", cwd=processed
    )
    check_outputs(str(processed / "DATA"), "parallel", simulated_dir)


def test_simple_pipeline_executor_in_process(tmp_path: Path, simulated_dir: Path) -> None:
    repo = ingested_repo(tmp_path, simulated_dir)
    butler = SimplePipelineExecutor.prep_butler(repo, inputs=["rawexpr", "darkr"], output="inprocess")
    executor = SimplePipelineExecutor.from_pipeline_filename(PIPELINE, butler=butler)
    quanta = executor.run(register_dataset_types=True)
    assert len(quanta) == N_QUANTA
    check_outputs(repo, "inprocess", simulated_dir)


def test_corrupt_input_fails_only_its_quantum(tmp_path: Path, simulated_dir: Path) -> None:
    repo = ingested_repo(tmp_path, simulated_dir)
    with Butler.from_config(repo) as b:
        (victim,) = b.query_datasets(
            "rawexp",
            collections="rawexpr",
            where="instrument = 'simulator' AND exposure = 1 AND detector = 4",
        )
        path = Path(b.getURI(victim).ospath)
    good = path.read_bytes()
    path.write_bytes(good[:5000])
    result = pipetask(
        "run",
        "-p",
        PIPELINE,
        "-b",
        "DATA",
        "--register-dataset-types",
        "-i",
        "rawexpr,darkr",
        "-o",
        "subtractr",
        cwd=tmp_path,
        expect=1,
    )
    log = result.stdout + result.stderr
    assert str(path) in log  # the message names the unreadable file
    with Butler.from_config(repo, collections="subtractr") as b:
        done = {(r.dataId["exposure"], r.dataId["detector"]) for r in b.query_datasets("postDark")}
    assert len(done) == N_QUANTA - 1 and (1, 4) not in done
    # Of the failed quantum only its log is registered (for diagnosis); no output file of it is on disk.
    failed = {"instrument": "simulator", "exposure": 1, "detector": 4}
    with Butler.from_config(repo, collections="subtractr") as b:
        for dataset_type in ("postDark", "subtract_metadata"):
            assert not b.query_datasets(dataset_type, data_id=failed, explain=False)
        assert b.query_datasets("subtract_log", data_id=failed, explain=False)
    assert not list((Path(repo) / "subtractr").rglob("postDark_simulator_1_D4_*"))

    # With the input fixed, --extend-run --skip-existing runs only the failed quantum in the same run
    # (--clobber-outputs replaces its log).
    path.write_bytes(good)
    result = pipetask(
        "run",
        "-p",
        PIPELINE,
        "-b",
        "DATA",
        "-o",
        "subtractr",
        "--extend-run",
        "--skip-existing",
        "--clobber-outputs",
        cwd=tmp_path,
    )
    assert "Executed 1 quanta successfully, 0 failed" in result.stdout + result.stderr
    with Butler.from_config(repo, collections="subtractr") as b:
        assert len({r.run for r in b.query_datasets("postDark")}) == 1
    check_outputs(repo, "subtractr", simulated_dir)
