"""Hostile run names: refused in one line before anything is registered; pipetask outputs stay inside."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from lsst.daf.butler import Butler
from lsst.daf.butler.cli.butler import cli as butler_cli

from spherex.script import check_run_name, ingest_simulated

from .conftest import make_repo, venv_script

HOSTILE = {
    "escape": "../../escape",
    "encoded escape": "x%2e%2e/%2e%2e/%2e%2e/pwned",
    "absolute": "/abs/run",
    "glob": "*",
    "glob class": "raw[0-9]",
    "home": "~/raws",
    "variable": "$HOME",
    "newline": "raws\nother",
    "tab": "raws\tother",
    "right-to-left override": "raws\u202efits.exe",
    "zero-width space": "raw\u200bs",
    "comma": "rawexpr,darkr",
    "empty part": "a//b",
    "too long": "r" * 65,
}


def collections(repo: str) -> set[str]:
    with Butler.from_config(repo) as b:
        return {info.name for info in b.collections.query_info("*")}


@pytest.mark.parametrize("command", ["ingest-simulated", "ingest-spherex"])
@pytest.mark.parametrize("run", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_run_is_refused_before_registering(
    repo: str, simulated_dir: Path, command: str, run: str
) -> None:
    before = collections(repo)
    result = CliRunner().invoke(butler_cli, [command, "--run", run, repo, str(simulated_dir)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: Invalid --run {run!r}: "), line
    assert collections(repo) == before
    with Butler.from_config(repo) as b:
        assert not b.query_dimension_records("exposure", explain=False)


@pytest.mark.parametrize(
    "run", ["u/alice/raws-2025.1", "SPHEREx/l2b-v20", "raws_2025W18+test", "raws night 1"]
)
def test_ordinary_run_names_are_accepted(run: str) -> None:
    check_run_name(run)


def test_ordinary_nested_run_is_ingested(repo: str, simulated_dir: Path) -> None:
    report = ingest_simulated(repo, [str(simulated_dir)], run="u/alice/raws-2025.1")
    assert report.ok and len(report.ingested) == 18
    assert (Path(repo) / "u" / "alice" / "raws-2025.1").is_dir()


def files_outside(top: Path, repo: Path) -> set[Path]:
    return {p for p in top.rglob("*") if repo not in p.parents and p != repo}


def test_pipetask_output_with_escapes_writes_nothing_outside(simulated_dir: Path, tmp_path: Path) -> None:
    """The real ``pipetask run -o 'x%2e%2e/...'``: the datastore refuses the escaped location."""
    top = tmp_path / "a" / "b"
    repo = Path(make_repo(top / "DATA"))
    assert ingest_simulated(str(repo), [str(simulated_dir)]).ok
    assert ingest_simulated(str(repo), [str(simulated_dir)], regex="dark_current.fits", ingest_type="dark").ok
    before = files_outside(tmp_path, repo)
    pipeline = Path(__file__).parents[1] / "pipelines" / "ExamplePipeline.yaml"
    output = "x%2e%2e/%2e%2e/%2e%2e/pwned"
    command = [venv_script("pipetask"), "run", "-p", str(pipeline), "-b", str(repo)]
    command += ["--register-dataset-types", "-i", "rawexpr,darkr", "-o", output]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert completed.returncode != 0
    assert "outside the datastore root" in completed.stderr
    assert files_outside(tmp_path, repo) == before
    assert not any(p.name == "pwned" for p in tmp_path.rglob("*"))
