"""``spherex-demo`` at a tiny size: everything it promises is written, and a second run reuses it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from click.testing import CliRunner
from lsst.daf.butler import Butler

from spherex.demo import DemoError, estimate_demo_bytes
from spherex.demo.cli import main
from spherex.demo.pipetask import PipetaskError, QuantumProgress, run_pipetask
from spherex.demo.run import DemoContext, DemoResult, create_step

ARGS = ["--exposures", "2", "--size", "32"]


def _disk_usage(directory: Path) -> int:
    seen: set[int] = set()
    total = 0
    for path in directory.rglob("*"):
        stat = path.lstat()
        if path.is_file() and not path.is_symlink() and stat.st_ino not in seen:
            seen.add(stat.st_ino)
            total += stat.st_size
    return total


def test_demo_tiny_twice(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    first = CliRunner().invoke(main, [str(directory), *ARGS])
    assert first.exit_code == 0, first.output
    assert "(new)" in first.output
    assert "datasets:    12 rawexp, 12 dark, 12 postDark" in first.output
    # The fast route by default, and the quanta counted while the pipeline runs.
    assert "pipetask run -j 1 " in first.output
    assert "quanta: 12/12 done, 0 failed" in first.output
    for name in ("quicklook.png", "skymap.png"):
        png = directory / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 10_000  # a real picture, not an empty canvas
        assert str(png) in first.output
    for step in ("Simulate", "Ingest raw", "Ingest dark", "quantum graph", "Run ExamplePipeline", "total"):
        assert step in first.output
    # The demo ends with one spectrum measured from the repository: its table and its plot, printed, and
    # measurements that agree with the simulation's truth within their errors.
    (spectrum_path,) = (directory / "spectra").glob("*.ecsv")
    plot = spectrum_path.with_suffix(".png")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(spectrum_path) in first.output and str(plot) in first.output
    spectrum = Table.read(spectrum_path, format="ascii.ecsv")
    used = spectrum[spectrum["used"]]
    assert len(used) >= 10 and np.ptp(used["wavelength"]) > 3.0  # 0.75-5 micron, not one band
    pull = (np.asarray(used["flux"]) - np.asarray(used["flux_true"])) / np.asarray(used["flux_err"])
    assert np.mean(np.abs(pull) < 3) >= 0.95, pull

    repo = directory / "DATA"
    with Butler.from_config(str(repo), collections="subtractr") as butler:
        (first_run,) = [c for c in butler.collections.query("subtractr/*")]
        refs = butler.query_datasets("postDark", collections=first_run)
        header = fits.getheader(butler.getURI(refs[0]).ospath, 0)
    # The quantum graph picture names the run the pipeline then created, and groups the quanta.
    dot = (directory / "qgraph.dot").read_text()
    assert dot.startswith("digraph")
    assert f"outputs into {first_run}" in dot
    assert dot.count("subgraph cluster_") == 2
    if shutil.which("dot"):
        svg_width = float(re.search(r'<svg width="([\d.]+)pt"', (directory / "qgraph.svg").read_text())[1])
        assert svg_width < 5000  # two rows of six, not a ribbon of twelve
        assert "not drawn:" not in first.output
    else:
        # Without Graphviz the demo still succeeds, and its summary says what it could not draw and how.
        assert not (directory / "qgraph.svg").exists()
        assert "not drawn:\n    quantum graph (SVG): Graphviz's `dot` is not on PATH" in first.output
        assert "apt-get install graphviz" in first.output
    # The dark's dataset id card keeps its whole comment; astropy had nothing to truncate.
    assert header.comments["SUBDSID"] == "UUID of subtracted dataset"
    assert "Card is too long" not in (directory / "logs" / "pipetask-run.log").read_text()
    assert estimate_demo_bytes(2, 32) >= _disk_usage(directory)

    second = CliRunner().invoke(main, [str(directory), *ARGS])
    assert second.exit_code == 0, second.output
    assert "Reusing the demo repository" in second.output
    assert "12 already present" in second.output
    assert "replacing its run" in second.output
    assert "datasets:    12 rawexp, 12 dark, 12 postDark" in second.output
    with Butler.from_config(str(repo), collections="subtractr") as butler:
        (second_run,) = [c for c in butler.collections.query("subtractr/*")]
    assert second_run != first_run  # the pipeline output run was replaced, not added to
    assert second_run in second.output
    # --prune-replaced=purge removed the replaced run's files and the directories that held them.
    assert (repo / second_run).is_dir()
    assert not (repo / first_run).exists()
    assert sorted(p.name for p in (repo / "subtractr").iterdir()) == [second_run.split("/")[1]]


@pytest.mark.slow
def test_demo_fresh(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    assert CliRunner().invoke(main, [str(directory), *ARGS]).exit_code == 0
    third = CliRunner().invoke(main, [str(directory), *ARGS, "--fresh"])
    assert third.exit_code == 0, third.output
    assert "Removing the earlier demo" in third.output and "(new)" in third.output


def test_demo_refuses_what_the_disk_cannot_hold(tmp_path: Path) -> None:
    directory = tmp_path / "big"
    free = shutil.disk_usage(tmp_path).free
    exposures = 1000
    assert estimate_demo_bytes(exposures, 2040) > free, "this disk is too large for the test"
    result = CliRunner().invoke(main, [str(directory), "--exposures", str(exposures), "--size", "2040"])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert re.search(r"Error: 1000 exposures of 2040x2040 pixels need about [\d.]+ GB in .*, which has", line)
    assert not directory.exists()  # nothing written


def test_estimate_of_the_issue_example() -> None:
    # spherex-demo --exposures 8 --size 2040: 48 raws, 48 darks, 48 postDark (x2 while replacing).
    assert 7e9 < estimate_demo_bytes(8, 2040) < 1.1e10


def test_misspelled_collection_is_one_line(repo: str, tmp_path: Path) -> None:
    log = tmp_path / "qgraph.log"
    pipeline = str(Path(__file__).parents[1] / "pipelines" / "ExamplePipeline.yaml")
    with pytest.raises(PipetaskError) as caught:
        run_pipetask(["qgraph", "-p", pipeline, "-b", repo, "-i", "rawexprr,darkr", "-o", "x"], log, echo=str)
    message = str(caught.value)
    assert "\n" not in message
    assert "MissingCollectionError: No collection" in message and "'rawexprr" in message
    assert str(log) in message and "Traceback" in log.read_text()  # the whole story is kept


def test_existing_repository_is_one_line(repo: str, tmp_path: Path) -> None:
    directory = Path(repo).parent
    ctx = DemoContext(
        directory=directory,
        exposures=1,
        size=16,
        jobs=1,
        seed=1,
        echo=str,
        live_progress=False,
        result=DemoResult(directory=directory, repo=Path(repo), reused=False),
    )
    with pytest.raises(DemoError, match=r"already holds \(part of\) a repository") as caught:
        create_step(ctx)
    assert "\n" not in str(caught.value) and "--fresh" in str(caught.value)


def test_progress_lines() -> None:
    shown: list[str] = []
    progress = QuantumProgress(shown.append, live=False, interval=3600.0)
    log = "INFO lsst.pipe.base.mp_graph_executor - Executed {} quanta successfully, 0 failed and {} remain "
    for done in range(1, 25):
        assert progress.update(log.format(done, 24 - done) + "out of total 24 quanta.")
    assert not progress.update("INFO lsst.subtract - Subtracted dark")
    # The first report, then each quarter of the graph (no silence reaches the interval here).
    assert shown == [f"    quanta: {n}/24 done, 0 failed" for n in (1, 6, 12, 18, 24)]
