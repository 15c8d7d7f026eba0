"""What a user reads from ``butler ingest-simulated`` / ``ingest-spherex``: help texts and ingest output."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from lsst.daf.butler.cli.butler import cli as butler_cli

from .conftest import venv_script


@pytest.mark.parametrize("command", ["ingest-simulated", "ingest-spherex"])
def test_help_describes_repo_and_default_transfer(command: str) -> None:
    result = CliRunner().invoke(butler_cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # click wraps lines
    # pipe_base's wording of its own REPO argument used to leak into ours.
    assert "Path or alias for the butler repository." not in text
    assert "REPO is the URI or path to an existing data repository" in text
    assert "The external data transfer mode. [default: auto]" in text


def test_ingest_prints_its_summary_not_daf_butler_internals(repo: str, simulated_dir: Path) -> None:
    completed = subprocess.run(
        [venv_script("butler"), "ingest-simulated", repo, str(simulated_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Ingested 18 rawexp files (3 exposures) into rawexpr; 0 failed." in completed.stdout
    assert "Importing" not in completed.stdout + completed.stderr  # daf_butler's "Importing N datasets"


def test_explicit_log_level_still_shows_daf_butler_import(repo: str, simulated_dir: Path) -> None:
    completed = subprocess.run(
        [
            venv_script("butler"),
            "--log-level",
            "lsst.daf.butler.direct_butler._direct_butler=INFO",
            "ingest-simulated",
            repo,
            str(simulated_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Importing 18 datasets" in completed.stdout + completed.stderr
