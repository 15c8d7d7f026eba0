"""``spherex-spectrum``'s collections: a CHAINED ``spectra`` pointing at the latest runs, and the clean-up
after a call that was killed, as a user meets them."""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import shutil
import signal
import subprocess
import time
from contextlib import chdir
from pathlib import Path

import pytest
from click.testing import CliRunner
from lsst.daf.butler import Butler, CollectionType
from lsst.daf.butler.cli.butler import cli as butler_cli

from spherex.script import measure_spectra, read_spectra
from spherex.simulator.deep_field import deep_field_sources

from .conftest import deep_field_repo, venv_script

RA, DEC, SIZE, SOURCES, SEED = 150.0, 2.0, 64, 2, 7


@pytest.fixture(scope="module")
def field_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A repository holding a small deep field, and a two-target catalogue of it."""
    work = tmp_path_factory.mktemp("spectrum_runs")
    return deep_field_repo(work, RA, DEC, SOURCES, SIZE, SEED, steps=2, psf_zones=3, psf_size=21, wave_grid=5)


def spectra_runs(butler: Butler) -> list[str]:
    return sorted(butler.collections.query("spectra/*", collection_types={CollectionType.RUN}))


def test_calls_are_chained_latest_first(field_repo: tuple[str, Path], tmp_path: Path) -> None:
    repo, targets = field_repo
    first = measure_spectra(repo, targets=targets, output=None)
    source = deep_field_sources(RA, DEC, SOURCES, SIZE, SEED)[0]
    second = measure_spectra(repo, ra=source.ra, dec=source.dec, name="again", output=None)
    with Butler.from_config(repo) as butler:
        info = butler.collections.get_info("spectra")
        assert info.type is CollectionType.CHAINED
        children = list(info.children)
        # As pipetask -o: the newest runs first, then the earlier call's, then the images measured.
        assert children[:4] == [second.output_run, second.target_run, first.output_run, first.target_run]
        assert "SPHEREx/l2b-v20" in children[4:]
        # Through the chain, the latest spectra; each run keeps its own.
        assert set(read_spectra(butler, "spectra")) == {"again"}
        assert set(read_spectra(butler, first.output_run)) == {
            s.name for s in deep_field_sources(RA, DEC, SOURCES, SIZE, SEED)
        }
        # What each finished run holds is said in its documentation.
        docs = {i.name: i.doc for i in butler.collections.query_info("spectra/*", include_doc=True)}
        assert docs[second.output_run] == "spherex-spectrum of 1 target(s) from position"
        # Provenance: the versions of what computed the spectra, and every task's configuration.
        packages = butler.get("packages", collections=first.output_run)
        assert packages["spherex-butler-poc"] == importlib.metadata.version("spherex-butler-poc")
        assert packages["lsst-pipe-base"] == importlib.metadata.version("lsst-pipe-base")
        config = butler.get("forcedSpectrophotometry_config", collections=first.output_run)
        assert config.cutoutHalfSize == 5


def test_a_call_that_finds_nothing_leaves_no_run(field_repo: tuple[str, Path]) -> None:
    repo, _ = field_repo
    with Butler.from_config(repo) as butler:
        before = spectra_runs(butler)
    with pytest.raises(ValueError, match="nothing to measure"):
        measure_spectra(repo, ra=10.0, dec=-40.0, name="nowhere", output=None)
    with Butler.from_config(repo) as butler:
        assert spectra_runs(butler) == before


def test_a_killed_call_is_cleaned_up_by_the_next(field_repo: tuple[str, Path], tmp_path: Path) -> None:
    repo, targets = field_repo
    with Butler.from_config(repo) as butler:
        before = spectra_runs(butler)
    # A real spherex-spectrum, killed (SIGKILL: no clean-up of its own) once its runs exist.
    process = subprocess.Popen(
        [venv_script("spherex-spectrum"), repo, "--targets", str(targets), "--output", str(tmp_path / "out")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    orphans: list[str] = []
    while time.monotonic() < deadline and process.poll() is None:
        with Butler.from_config(repo) as butler:
            orphans = sorted(set(spectra_runs(butler)) - set(before))
        if len(orphans) == 2:
            break
        time.sleep(0.05)
    if process.poll() is not None:
        pytest.fail(f"spherex-spectrum finished (exit {process.returncode}) before it could be killed")
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(orphans) == 2, orphans
    with Butler.from_config(repo) as butler:
        assert set(orphans) <= set(spectra_runs(butler))
        chained = set(butler.collections.get_info("spectra").children) if before else set()
        assert not set(orphans) & chained  # never visible through the chain

    # The next call removes what the killed one left, and chains its own runs.
    result = measure_spectra(repo, targets=targets, output=None)
    with Butler.from_config(repo) as butler:
        assert not set(orphans) & set(spectra_runs(butler))
        assert set(spectra_runs(butler)) == set(before) | {result.output_run, result.target_run}
        assert list(butler.collections.get_info("spectra").children)[:2] == [
            result.output_run,
            result.target_run,
        ]


def test_runs_of_a_live_call_are_left_alone(field_repo: tuple[str, Path]) -> None:
    repo, _ = field_repo
    from spherex.script.spectrum_runs import SpectrumRuns, recover_spectrum_runs

    with Butler.from_config(repo, writeable=True) as butler:
        # This process is alive: its in-progress runs are another call at work, not leftovers.
        runs = SpectrumRuns.begin(butler, "spectra")
        assert recover_spectrum_runs(butler, "spectra") == []
        assert {runs.output_run, runs.target_run} <= set(spectra_runs(butler))
        runs.abandon(butler)
        assert not {runs.output_run, runs.target_run} & set(spectra_runs(butler))


def readme_run_commands() -> list[list[str]]:
    """The README's commands that list and remove spherex-spectrum runs, as written."""
    text = (Path(__file__).parents[1] / "README.md").read_text()
    start = text.index("To list the calls, newest first")
    block = re.search(r"```bash\n(.*?)```", text[start:], re.S).group(1)
    return [shlex.split(line.strip()) for line in block.splitlines() if line.strip()]


def test_readme_commands_list_and_remove_old_runs(field_repo: tuple[str, Path], tmp_path: Path) -> None:
    repo, targets = field_repo
    copy = tmp_path / "DATA"
    shutil.copytree(repo, copy)
    measure_spectra(str(copy), targets=targets, output=None)
    listing, removal = readme_run_commands()
    assert listing[:2] == ["butler", "query-collections"] and removal[:2] == ["butler", "remove-runs"]
    with chdir(tmp_path):
        result = CliRunner().invoke(butler_cli, listing[1:])
        assert result.exit_code == 0, result.output
        with Butler.from_config(str(copy)) as butler:
            runs = spectra_runs(butler)
        assert runs and all(run in result.output for run in runs)
        result = CliRunner().invoke(butler_cli, removal[1:])
        assert result.exit_code == 0, result.output
    with Butler.from_config(str(copy)) as butler:
        assert spectra_runs(butler) == []
        # The chain is left with the images only; the next call puts its runs in front again.
        assert [c for c in butler.collections.get_info("spectra").children if c.startswith("spectra/")] == []


def test_each_target_catalogue_is_read_once_per_call(field_repo: tuple[str, Path]) -> None:
    from spherex.tasks.catalogue_cache import TARGET_CATALOGUES

    repo, targets = field_repo
    TARGET_CATALOGUES.clear()
    before = TARGET_CATALOGUES.reads
    result = measure_spectra(repo, targets=targets, output=None)
    with Butler.from_config(repo) as butler:
        catalogues = butler.query_datasets("spectroTargets", collections=result.target_run, explain=False)
        measured = butler.query_datasets(
            "forcedSpectrophotometry", collections=result.output_run, explain=False
        )
    # Every image's quantum and the gathering one use the catalogues; each is read from the Butler once.
    assert len(measured) >= 2
    assert TARGET_CATALOGUES.reads - before == len(catalogues)
    assert set(result.spectra) == {s.name for s in deep_field_sources(RA, DEC, SOURCES, SIZE, SEED)}
