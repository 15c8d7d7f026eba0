"""Hostile paths given to ``butler ingest-simulated``: escapes, links, FIFOs, devices, loops, nothing found.

Each test builds its bad input in a temporary directory and checks what a user relies on: the bad item
is named in one line, the good files land (byte for byte what was checked), and nothing is read from
outside the location or hangs.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from lsst.daf.butler import Butler
from lsst.daf.butler.cli.butler import cli as butler_cli

from spherex.script import ingest_simulated
from spherex.script.ingest.sources import local_file_uri

from .conftest import SIM_EXPOSURES

N_RAWS = SIM_EXPOSURES * 6
RAW_GLOB = "sim_exposure_*_array_?.fits"


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """Fail, rather than hang the suite, if an ingest blocks on a FIFO or a device (it must not)."""

    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("ingest blocked for 120 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def raws(directory: Path) -> list[Path]:
    return sorted(directory.glob(RAW_GLOB))


def stored_bytes(repo: str) -> dict[str, bytes]:
    """The bytes stored for each raw, by the source file name they came from (``..._array_N.fits``)."""
    with Butler.from_config(repo) as b:
        refs = b.query_datasets("rawexp", collections="rawexpr", explain=False, limit=None)
        return {
            f"sim_exposure_{ref.dataId['exposure']:06d}_array_{ref.dataId['detector']}.fits": b.getURI(
                ref
            ).read()
            for ref in refs
        }


def junk_copies(good: Path, elsewhere: Path) -> None:
    """Put files with the same names as the good raws, but other bytes, in ``elsewhere``."""
    elsewhere.mkdir(parents=True, exist_ok=True)
    for path in raws(good):
        (elsewhere / path.name).write_bytes(b"junk" * 100)


def test_escaped_directory_name_is_that_directory(repo: str, simulated_dir: Path, tmp_path: Path) -> None:
    # Decoded, the name would be A/../../pAx: the directory pAx beside the location.
    location = tmp_path / "in" / "location"
    hostile = location / "%41%2F%2E%2E%2F%2E%2E%2FpAx"
    shutil.copytree(simulated_dir, hostile)
    junk_copies(simulated_dir, location.parent / "pAx")
    report = ingest_simulated(repo, [str(location)])
    assert report.ok, report.failed
    assert len(report.ingested) == N_RAWS
    assert all(str(hostile) in path for path in report.ingested)
    stored = stored_bytes(repo)
    assert stored == {path.name: path.read_bytes() for path in raws(simulated_dir)}


def test_escaped_location_argument_is_taken_literally(repo: str, simulated_dir: Path, tmp_path: Path) -> None:
    literal = tmp_path / "raw%41"
    shutil.copytree(simulated_dir, literal)
    junk_copies(simulated_dir, tmp_path / "rawA")
    report = ingest_simulated(repo, [str(literal)])
    assert report.ok and len(report.ingested) == N_RAWS
    assert stored_bytes(repo) == {path.name: path.read_bytes() for path in raws(simulated_dir)}


def test_local_uri_keeps_every_character() -> None:
    uri = local_file_uri("/data/%41%2F%2E%2E/a#b?c d.fits")
    assert uri.ospath == "/data/%41%2F%2E%2E/a#b?c d.fits"
    assert uri.basename() == "a#b?c d.fits"


@pytest.mark.parametrize("target", ["fifo", "/dev/zero", "/dev/urandom"])
def test_non_regular_file_named_like_a_raw_is_refused(repo: str, simulated_copy: Path, target: str) -> None:
    hostile = simulated_copy / "sim_exposure_000007_array_1.fits"
    if target == "fifo":
        os.mkfifo(hostile)
        kind = "a FIFO (named pipe)"
    else:
        hostile.symlink_to(target)
        kind = "a character device"
    report = ingest_simulated(repo, [str(simulated_copy)])
    assert [str(f) for f in report.failed] == [
        f"{hostile}: {kind}, not a regular file; only regular files are ingested"
    ]
    assert len(report.ingested) == N_RAWS  # every good file landed


def test_directory_link_loop_is_walked_once(repo: str, simulated_dir: Path, tmp_path: Path) -> None:
    location = tmp_path / "location"
    shutil.copytree(simulated_dir, location / "night1")
    (location / "night1" / "up").symlink_to("..")  # a loop back into the location
    (location / "again").symlink_to("night1")  # a second way into the same directory
    report = ingest_simulated(repo, [str(location)])
    assert report.ok, [str(f) for f in report.failed]
    assert len(report.ingested) == N_RAWS and len(report.exposures) == SIM_EXPOSURES


def test_directory_link_out_of_the_location_is_not_followed(
    repo: str, simulated_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    shutil.copytree(simulated_dir, outside)
    location = tmp_path / "location"
    location.mkdir()
    for path in raws(simulated_dir)[:6]:  # exposure 0
        shutil.copy(path, location)
    (location / "up").symlink_to("..")
    (location / "other").symlink_to(outside)
    report = ingest_simulated(repo, [str(location)])
    lines = sorted(str(f) for f in report.failed)
    assert len(lines) == 2
    assert lines[0].startswith(f"{location / 'other'}: link to a directory outside {location} ({outside})")
    assert lines[1].startswith(f"{location / 'up'}: link to a directory outside {location} ({tmp_path})")
    assert report.exposures == {0} and len(report.ingested) == 6


@pytest.mark.parametrize("kind", ["empty directory", "Level-2 names"])
def test_nothing_matched_is_an_error(repo: str, tmp_path: Path, kind: str) -> None:
    location = tmp_path / "location"
    location.mkdir()
    if kind == "Level-2 names":
        (location / "level2_2025W43_1A_0516_1D5_spx_l2b-v20-2025-299.fits").write_bytes(b"x")
    result = CliRunner().invoke(butler_cli, ["ingest-simulated", repo, str(location)])
    assert result.exit_code == 1
    seen = "0 files" if kind == "empty directory" else "1 file"
    assert result.stderr.strip() == (
        f"error: {location}: no file name matches --regex 'sim_exposure_(\\\\d+)_array_(\\\\d).fits' "
        f"({seen} looked at); nothing was ingested from here"
    )
    assert "Ingested 0 rawexp files (0 exposures) into rawexpr; 1 failed." in result.stdout
