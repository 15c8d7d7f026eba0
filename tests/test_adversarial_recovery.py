"""After a crash: a hot SQLite journal, a pipetask killed before its output chain was filled.

The crashed states are made the way a crash makes them: a process is killed with SIGKILL in the middle
of a SQLite write transaction; the empty chain, orphan run and ``*.tmp.fits`` temporary are what a
``pipetask run`` killed before filling its chain leaves (observed on this machine).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from lsst.daf.butler import Butler, CollectionType
from lsst.daf.butler.cli.butler import cli as butler_cli

from spherex.demo.run import run_demo
from spherex.script import ingest_simulated
from spherex.script.pipeline_recovery import OutputState, inspect_pipeline_output, recover_pipeline_output

from .conftest import make_repo, venv_script
from .test_example_pipeline import N_QUANTA, PIPELINE, check_outputs, ingested_repo, pipetask

_KILLED_WRITER = r"""
import os, signal, sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA cache_size = 1")  # spill changed pages into the database file
connection.execute("BEGIN IMMEDIATE")
connection.execute("CREATE TABLE spilled (x)")
connection.executemany("INSERT INTO spilled VALUES (?)", [(os.urandom(200),) for _ in range(5000)])
connection.execute("DELETE FROM file_datastore_records")
os.kill(os.getpid(), signal.SIGKILL)
"""


def kill_a_writer(database: Path) -> None:
    """Leave a hot journal: a writer killed with changed pages in the database file."""
    completed = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(database)], timeout=300)
    assert completed.returncode == -signal.SIGKILL
    assert Path(f"{database}-journal").stat().st_size > 0


def test_read_only_open_after_a_killed_write_recovers(repo: str, simulated_dir: Path) -> None:
    assert ingest_simulated(repo, [str(simulated_dir)]).ok
    database = Path(repo) / "spherex.sqlite3"
    kill_a_writer(database)
    # A user's first command after the crash: a query, opening the repository read-only.
    result = CliRunner().invoke(butler_cli, ["query-datasets", repo, "rawexp", "--collections", "rawexpr"])
    assert result.exit_code == 0, result.output
    assert len([line for line in result.stdout.splitlines() if line.startswith("rawexp ")]) == 18
    assert not Path(f"{database}-journal").exists()
    with Butler.from_config(repo) as b:  # everything committed is there, nothing of the killed write
        refs = b.query_datasets("rawexp", collections="rawexpr", explain=False)
        assert len(refs) == 18 and all(b.getURI(ref).exists() for ref in refs)
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        assert "spilled" not in tables


def killed_before_the_chain(repo: str, output: str = "subtractr") -> Path:
    """What ``pipetask run -o subtractr`` leaves when killed before it fills its chain."""
    run = f"{output}/20261130T221709Z"
    with Butler.from_config(repo, writeable=True) as b:
        b.collections.register(run, CollectionType.RUN)
        b.collections.register(output, CollectionType.CHAINED)
    temporary = Path(repo) / run / "postDark" / "SIM_2025W18" / "0" / "k3v9x0q2mzt4a1b7.tmp.fits"
    temporary.parent.mkdir(parents=True)
    temporary.write_bytes(b"\0" * 2880)
    return temporary


def test_readme_recovery_after_a_pipetask_killed_before_filling_its_chain(
    tmp_path: Path, simulated_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README step 8: --extend-run fails on an empty chain; its two removal commands, then step 7, work."""
    repo = ingested_repo(tmp_path, simulated_dir)
    killed_before_the_chain(repo)
    failed = pipetask(
        "run", "-p", PIPELINE, "-b", "DATA", "-o", "subtractr", "--extend-run", "--skip-existing",
        "--clobber-outputs", cwd=tmp_path, expect=1,
    )  # fmt: skip
    assert "empty output chain" in failed.stderr
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "butler remove-collections DATA subtractr --no-confirm\n" in readme
    assert "butler remove-runs DATA 'subtractr/*' --no-confirm\n" in readme
    for command in (
        ["remove-collections", "DATA", "subtractr", "--no-confirm"],
        ["remove-runs", "DATA", "subtractr/*", "--no-confirm"],
    ):
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(butler_cli, command, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    pipetask(
        "run", "-p", PIPELINE, "-b", "DATA", "--register-dataset-types", "-i", "rawexpr,darkr",
        "-o", "subtractr", cwd=tmp_path,
    )  # fmt: skip
    check_outputs(repo, "subtractr", simulated_dir)


def test_recovery_removes_what_a_killed_pipetask_left(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "DATA")
    temporary = killed_before_the_chain(repo)
    with Butler.from_config(repo) as b:
        assert inspect_pipeline_output(b, "subtractr").state is OutputState.EMPTY_CHAIN
    found = recover_pipeline_output(repo, "subtractr")
    assert found.state is OutputState.ABSENT
    assert found.orphan_runs == ["subtractr/20261130T221709Z"] and found.temporaries == [str(temporary)]
    assert not temporary.exists()
    with Butler.from_config(repo) as b:
        assert not list(b.collections.query("subtractr*"))


def test_recovery_leaves_a_complete_chain_alone(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "DATA")
    with Butler.from_config(repo, writeable=True) as b:
        b.collections.register("subtractr/20260101T000000Z", CollectionType.RUN)
        b.collections.register("subtractr/20250101T000000Z", CollectionType.RUN)  # replaced, kept
        b.collections.register("subtractr", CollectionType.CHAINED)
        b.collections.redefine_chain("subtractr", ["subtractr/20260101T000000Z"])
    found = recover_pipeline_output(repo, "subtractr")
    assert found.state is OutputState.CHAIN and found.orphan_runs == []
    with Butler.from_config(repo) as b:
        assert set(b.collections.query("subtractr/*")) == {
            "subtractr/20260101T000000Z",
            "subtractr/20250101T000000Z",
        }


@pytest.mark.slow
def test_demo_recovers_by_itself_after_a_killed_pipetask(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    args = dict(exposures=2, size=32, jobs=1, echo=lambda line: None)
    run_demo(directory, **args)
    repo = str(directory / "DATA")
    with Butler.from_config(repo, writeable=True) as b:
        (previous,) = b.collections.get_info("subtractr").children[:1]
        b.collections.redefine_chain("subtractr", [])  # as a pipetask killed before filling it
    killed_before_the_chain(repo)
    lines: list[str] = []
    result = run_demo(directory, **{**args, "echo": lines.append})
    assert any("removed run(s) of a pipetask killed before it filled the chain" in line for line in lines)
    assert any("removed 1 temporary file(s)" in line for line in lines)
    assert result.dataset_counts["postDark"] == 12
    assert not list(Path(repo).rglob("*.tmp.fits"))


@pytest.mark.slow
def test_real_killed_pipetask_is_completed_by_the_readme_commands(
    tmp_path: Path, simulated_dir: Path
) -> None:
    """SIGKILL of the real pipetask once its chain exists; recovery, then --extend-run completes it."""
    repo = ingested_repo(tmp_path, simulated_dir)
    process = subprocess.Popen(
        [venv_script("pipetask"), "run", "-p", PIPELINE, "-b", repo, "--register-dataset-types",
         "-i", "rawexpr,darkr", "-o", "subtractr"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    database = Path(repo) / "spherex.sqlite3"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=60) as connection:
            rows = connection.execute(
                "SELECT COUNT(*) FROM collection WHERE name LIKE 'subtractr/%'"
            ).fetchone()
        if rows[0]:
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    found = recover_pipeline_output(repo, "subtractr")
    if found.state is OutputState.ABSENT:
        pipetask(
            "run", "-p", PIPELINE, "-b", repo, "--register-dataset-types", "-i", "rawexpr,darkr",
            "-o", "subtractr", cwd=tmp_path,
        )  # fmt: skip
    else:
        pipetask(
            "run", "-p", PIPELINE, "-b", repo, "-o", "subtractr", "--extend-run", "--skip-existing",
            "--clobber-outputs", cwd=tmp_path,
        )  # fmt: skip
    print(f"state after the kill: {found.state.value}; left: {found.describe() or 'nothing'}")
    with Butler.from_config(repo) as b:
        assert len(b.query_datasets("postDark", collections="subtractr", explain=False)) == N_QUANTA
    assert not list(Path(repo).rglob("*.tmp.fits"))
