"""``spherex-demo`` at a tiny size: everything it promises is written, and a second run reuses it."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from lsst.daf.butler import Butler

from spherex.demo.cli import main


def test_demo_tiny_twice(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    args = [str(directory), "--exposures", "2", "--size", "32", "--jobs", "1"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "(new)" in first.output
    assert "datasets:    12 rawexp, 12 dark, 12 postDark" in first.output
    for name in ("quicklook.png", "skymap.png"):
        png = directory / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 10_000  # a real picture, not an empty canvas
        assert str(png) in first.output
    assert (directory / "qgraph.dot").read_text().startswith("digraph")
    for step in ("Simulate", "Ingest raw", "Ingest dark", "quantum graph", "Run ExamplePipeline", "total"):
        assert step in first.output

    with Butler.from_config(str(directory / "DATA"), collections="subtractr") as butler:
        runs_before = set(butler.collections.query("subtractr", flatten_chains=True))

    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0, second.output
    assert "Reusing the demo repository" in second.output
    assert "12 already present" in second.output
    assert "replacing its run" in second.output
    assert "datasets:    12 rawexp, 12 dark, 12 postDark" in second.output
    with Butler.from_config(str(directory / "DATA"), collections="subtractr") as butler:
        runs_after = set(butler.collections.query("subtractr", flatten_chains=True))
    assert runs_after != runs_before  # the pipeline output run was replaced, not added to

    third = CliRunner().invoke(main, [*args, "--fresh"])
    assert third.exit_code == 0, third.output
    assert "Removing the earlier demo" in third.output and "(new)" in third.output
