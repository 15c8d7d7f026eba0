"""Spectra from the repository: the README's workflow on a simulated deep field, and what it measures.

The module fixture runs the commands of the README section "Spectra from the repository" as written
(simulate a deep field with a truth table, create a repository, ingest the Level-2 files, run
``spherex-spectrum``); the tests check the quantum graph, the files, the cutout reads and the accuracy
against the simulation's truth.  They take minutes (the simulation and pipeline runs of the fixture), so
they are marked slow; `tests/test_spectrophotometry_accuracy.py` checks the accuracy figures by default
on a smaller deep field.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from lsst.daf.butler import Butler, DeferredDatasetHandle
from lsst.sphgeom import LonLat, UnitVector3d

from spherex.simulator.deep_field import deep_field_sources
from spherex.tasks import ForcedSpectrophotometryTask, GatherSpectraTask

from .conftest import venv_script

README = Path(__file__).parents[1] / "README.md"
SECTION = "## Spectra from the repository"


def readme_commands() -> list[str]:
    """Return the command lines of the README section's workflow (its ``bash`` block that simulates)."""
    text = README.read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    block = next(block for block in blocks if "spherex-simulate" in block)
    lines = []
    for line in block.replace("\\\n", " ").splitlines():
        line = line.split(" #")[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def run(command: str, cwd: Path, expect: int = 0) -> subprocess.CompletedProcess:
    bindir = str(Path(venv_script("butler")).parent)
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}")
    words = shlex.split(command)
    result = subprocess.run(
        [venv_script(words[0]), *words[1:]], cwd=cwd, capture_output=True, text=True, env=env, timeout=900
    )
    assert result.returncode == expect, (
        f"{command}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result


def option(command: str, name: str, count: int = 1) -> list[str]:
    words = shlex.split(command)
    index = words.index(name)
    return words[index + 1 : index + 1 + count]


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The README's commands, run in a fresh directory; returns what they made."""
    work = tmp_path_factory.mktemp("spectra")
    commands = readme_commands()
    outputs = {command.split()[0]: run(command, work) for command in commands}
    simulate = next(c for c in commands if c.startswith("spherex-simulate"))
    ra, dec = (float(v) for v in option(simulate, "--deep-field", 2))
    spectrum = next(c for c in commands if c.startswith("spherex-spectrum"))
    return {
        "work": work,
        "repo": str(work / "DATA"),
        "truth": Table.read(work / option(simulate, "--truth")[0]),
        "targets": Table.read(work / option(simulate, "--targets")[0], format="ascii.csv"),
        "spectra_dir": work / option(spectrum, "--output")[0],
        "sources": {
            s.name: s
            for s in deep_field_sources(
                ra,
                dec,
                int(option(simulate, "--deep-field-sources")[0]),
                int(option(simulate, "--size")[0]),
                0,
            )
        },
        "stdout": outputs["spherex-spectrum"].stdout,
    }


def spectra(workflow: dict) -> dict[str, Table]:
    return {
        path.stem: Table.read(path, format="ascii.ecsv")
        for path in sorted(workflow["spectra_dir"].glob("*.ecsv"))
    }


@pytest.mark.slow  # the README's deep field: minutes; test_spectrophotometry_accuracy.py is the short check
def test_every_target_gets_a_spectrum_file_and_plot(workflow: dict) -> None:
    found = spectra(workflow)
    assert set(found) == set(workflow["targets"]["name"])
    for name, table in found.items():
        for column in (
            "exposure",
            "detector",
            "wavelength",
            "bandwidth",
            "flux",
            "flux_err",
            "flags",
            "used",
        ):
            assert column in table.colnames
        assert table["wavelength"].unit == "micron" and table["flux"].unit == "uJy"
        assert np.all(np.diff(table["wavelength"]) >= 0), "sorted by wavelength"
        # Seen through every band of every array: 0.75 to 5 micron.
        assert table["wavelength"].min() < 1.0 and table["wavelength"].max() > 4.5
        assert set(table["detector"]) == {1, 2, 3, 4, 5, 6}
        png = workflow["spectra_dir"] / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert f"{name}: {len(table)} measurements ({int(table['used'].sum())} used)" in workflow["stdout"]


@pytest.mark.slow
def test_measurements_are_the_truth_images(workflow: dict) -> None:
    """Each target is measured on exactly the images the simulation put it on (its truth rows)."""
    truth = workflow["truth"]
    for name, table in spectra(workflow).items():
        expected = {(int(r["exposure"]), int(r["detector"])) for r in truth[truth["name"] == name]}
        measured = {(int(e), int(d)) for e, d in zip(table["exposure"], table["detector"], strict=True)}
        assert measured == expected
        # Positions agree with the simulator's to 0.01 pixel (same WCS, same convention).
        rows = {(int(r["exposure"]), int(r["detector"])): r for r in truth[truth["name"] == name]}
        for row in table:
            true = rows[(int(row["exposure"]), int(row["detector"]))]
            assert abs(row["x"] - true["x"]) < 0.01 and abs(row["y"] - true["y"]) < 0.01
            assert abs(row["wavelength"] - true["wavelength"]) < 1e-4


@pytest.mark.slow
def test_accuracy_against_the_truth(workflow: dict) -> None:
    """Pulls of isolated sources, reduced chi-square of each spectrum, depth of the ice band."""
    pulls, reduced = [], []
    for name, table in spectra(workflow).items():
        used = table[table["used"]]
        assert len(used) >= 0.6 * len(table), f"{name}: most measurements are usable"
        pull = (np.asarray(used["flux"]) - np.asarray(used["flux_true"])) / np.asarray(used["flux_err"])
        pulls.append(pull)
        reduced.append(float(np.mean(pull**2)))
        # Each spectrum's chi-square is that of its degrees of freedom (two-sided 99.9%).
        low, high = chi2_interval(len(pull), z=3.29)
        assert low <= reduced[-1] <= high, (
            f"{name}: reduced chi-square {reduced[-1]:.2f} ({len(pull)} points)"
        )
    assert 0.7 <= float(np.median(reduced)) <= 1.5, reduced
    pulls = np.concatenate(pulls)
    assert np.median(np.abs(pulls)) <= 0.75
    assert 0.8 <= np.std(pulls) <= 1.25

    ice = [name for name in spectra(workflow) if workflow["sources"][name].spectrum.ice_depth > 0]
    assert ice
    for name in ice:
        used = spectra(workflow)[name]
        used = used[used["used"]]
        depth, error = fit_ice_depth(
            np.asarray(used["wavelength"]), np.asarray(used["flux"]), np.asarray(used["flux_err"])
        )
        injected = workflow["sources"][name].spectrum.ice_depth
        assert abs(depth / injected - 1) <= 0.10, (
            f"{name}: depth {depth:.3f} +- {error:.3f} vs {injected:.3f}"
        )


def chi2_interval(dof: int, z: float) -> tuple[float, float]:
    """Return the reduced chi-square at -z and +z sigma for ``dof`` degrees of freedom (Wilson-Hilferty)."""
    a = 2 / (9 * dof)
    return ((1 - a - z * np.sqrt(a)) ** 3, (1 - a + z * np.sqrt(a)) ** 3)


def fit_ice_depth(
    wavelength: np.ndarray, flux: np.ndarray, error: np.ndarray, centre: float = 3.05, sigma: float = 0.12
) -> tuple[float, float]:
    """Fit ``A (wavelength / 2) ** slope * (1 - depth * gauss(centre, sigma))``; return depth and error.

    The band's centre and width are the simulator's (spherex.simulator.spectra: ICE_WAVELENGTH,
    ICE_SIGMA); the continuum starts from a power law fitted outside the band, then Gauss-Newton.
    """
    g = np.exp(-((wavelength - centre) ** 2) / (2 * sigma**2))
    outside = np.abs(wavelength - centre) > 3 * sigma
    weight = (flux[outside] / error[outside]) ** 2
    design = np.stack([np.ones(outside.sum()), np.log(wavelength[outside] / 2)], axis=1)
    log_a, slope = np.linalg.solve(
        design.T @ (design * weight[:, None]), design.T @ (weight * np.log(flux[outside]))
    )
    params = np.array([np.exp(log_a), slope, 0.0])
    inverse_variance = 1 / error**2
    for _ in range(50):
        a, slope, depth = params
        continuum = a * (wavelength / 2) ** slope
        model = continuum * (1 - depth * g)
        jacobian = np.stack([model / a, model * np.log(wavelength / 2), -continuum * g], axis=1)
        normal = jacobian.T @ (jacobian * inverse_variance[:, None])
        step = np.linalg.solve(normal, jacobian.T @ (inverse_variance * (flux - model)))
        params = params + step
        if np.all(np.abs(step) <= 1e-10 * np.maximum(np.abs(params), 1)):
            break
    return float(params[2]), float(np.sqrt(np.linalg.inv(normal)[2, 2]))


@pytest.mark.slow
def test_quantum_graph_has_quanta_only_for_images_overlapping_targets(workflow: dict) -> None:
    from lsst.pipe.base.simple_pipeline_executor import SimplePipelineExecutor

    repo = workflow["repo"]
    (output_run,) = re.findall(r"in run (spectra/\S+);", workflow["stdout"])
    target_run = output_run.replace("spectra/", "spectra/targets/", 1)
    with Butler.from_config(repo) as butler:
        images = butler.query_datasets(
            "spectralImage", collections="SPHEREx/l2b-v20", with_dimension_records=True
        )
    build_butler = Butler.from_config(repo, collections=["SPHEREx/l2b-v20", target_run], run="qg/check")
    executor = SimplePipelineExecutor.from_pipeline_filename(
        "resource://spherex/pipelines/Spectrophotometry.yaml", butler=build_butler
    )
    graph = executor.quantum_graph
    measured = {
        (int(node.quantum.dataId["exposure"]), int(node.quantum.dataId["detector"]))
        for node in graph
        if node.taskDef.label == "forcedSpectrophotometry"
    }
    pixelization = build_butler.dimensions.commonSkyPix.pixelization
    pixels = {
        pixelization.index(UnitVector3d(LonLat.fromDegrees(float(t["ra"]), float(t["dec"]))))
        for t in workflow["targets"]
    }
    overlapping = set()
    for ref in images:
        region = ref.dataId.records["exposure_detector_region"].region
        if any(not pixelization.pixel(pixel).isDisjointFrom(region) for pixel in pixels):
            overlapping.add((int(ref.dataId["exposure"]), int(ref.dataId["detector"])))
    truth = workflow["truth"]
    seen = {(int(e), int(d)) for e, d in zip(truth["exposure"], truth["detector"], strict=True)}
    # Quanta for exactly the images whose footprint overlaps a target's sky pixel; among them every
    # image a target falls on; far fewer than the images in the repository.
    assert measured == overlapping
    assert seen <= measured
    assert len(measured) < len(images) / 2
    gathers = [node for node in graph if node.taskDef.label == "gatherSpectra"]
    # One gathering quantum for all targets (quanta cost more than the gathering itself).
    assert len(gathers) == 1
    (gather,) = gathers
    gathered = {int(ref.dataId["healpix7"]) for ref in gather.quantum.inputs["spectroTargets"]}
    assert gathered == pixels


class RecordingHandle(DeferredDatasetHandle):
    """A deferred handle that records what is read through it."""

    calls: list = []

    def get(self, *, component=None, parameters=None, storageClass=None):
        RecordingHandle.calls.append((component, parameters))
        return super().get(component=component, parameters=parameters, storageClass=storageClass)


@pytest.mark.slow
def test_measurement_reads_only_cutouts_and_matches_the_whole_image(workflow: dict) -> None:
    truth = workflow["truth"]
    exposure, detector = int(truth["exposure"][0]), int(truth["detector"][0])
    with Butler.from_config(workflow["repo"]) as butler:
        ref = butler.find_dataset(
            "spectralImage", collections="SPHEREx/l2b-v20", instrument="SPHEREx", exposure=exposure,
            detector=detector,
        )  # fmt: skip
        targets = [workflow["targets"]]
        RecordingHandle.calls = []
        handle = RecordingHandle(butler=butler, ref=ref, parameters=None)
        task = ForcedSpectrophotometryTask()
        by_cutout = task.run(handle, targets, exposure, detector).measurements
        whole = task.run(butler.get(ref), targets, exposure, detector).measurements
        shape = butler.get(ref.makeComponentRef("wcs")).array_shape
    assert len(by_cutout) == np.sum((truth["exposure"] == exposure) & (truth["detector"] == detector)) > 0
    assert RecordingHandle.calls[0] == ("wcs", None)
    # Then cutouts only: one `cutouts` read of boxes (one per tile holding targets), each a small part.
    assert [component for component, _ in RecordingHandle.calls[1:]] == ["cutouts"]
    boxes = RecordingHandle.calls[1][1]["boxes"]
    assert boxes
    for rows, columns in boxes:
        assert (rows.stop - rows.start) * (columns.stop - columns.start) < 0.1 * shape[0] * shape[1]
    np.testing.assert_allclose(by_cutout["flux"], whole["flux"], rtol=1e-9)
    np.testing.assert_allclose(by_cutout["flux_err"], whole["flux_err"], rtol=1e-9)


def test_gathering_keeps_flagged_measurements_and_marks_them() -> None:
    from spherex.tasks.spectrophotometry import _measurement_table

    def row(target, exposure, wavelength, names, fraction=1.0, flux=10.0):
        flags = sum(1 << {"HOT": 10, "SOURCE": 21}[name] for name in names.split("|") if name)
        return (
            target, exposure, 1, 5.0, 5.0, wavelength, 0.02, flux, 1.0, 0.0, flags, names, fraction, 121, 6e4,
            1.0, 0.0, 1.0, 0,
        )  # fmt: skip

    table = _measurement_table(
        [
            row("a", 1, 2.0, ""),
            row("a", 2, 1.0, "HOT|SOURCE"),  # HOT under the PSF core
            row("a", 3, 1.5, "SOURCE"),  # not an excluded flag
            row("b", 1, 1.2, "", fraction=0.5),  # at the image edge
            row("c", 1, 1.2, ""),  # not a target of this pixel
            row("a", 4, 3.0, "", flux=np.nan),  # no fit
        ]
    )
    targets = Table({"name": ["a", "b"], "ra": [1.0, 2.0], "dec": [0.0, 0.0], "kind": ["", ""]})
    spectra = GatherSpectraTask().run(targets, [table]).spectra
    assert list(spectra["target"]) == ["a", "a", "a", "a", "b"]
    assert list(spectra["wavelength"][:4]) == [1.0, 1.5, 2.0, 3.0]
    assert list(spectra["used"]) == [False, True, True, False, False]
    assert list(spectra["flag_names"][:2]) == ["HOT|SOURCE", "SOURCE"]
    # Each row carries its target's catalogue entry.
    assert list(spectra["target_ra"]) == [1.0, 1.0, 1.0, 1.0, 2.0]
    assert list(spectra["target_kind"]) == ["", "", "", "", ""]
    assert spectra["target_dec"].unit == "deg"


@pytest.mark.slow
def test_spectrum_command_errors_are_one_line(workflow: dict) -> None:
    work = workflow["work"]
    cases = [
        ("spherex-spectrum DATA", "Give a position (--ra and --dec) or a catalogue (--targets)"),
        ("spherex-spectrum DATA --ra 10 --dec 95", "position: dec 95.0 is outside -90 to 90 degrees"),
        ("spherex-spectrum DATA --ra 10 --dec 5 --targets targets.csv", "either --ra/--dec or --targets"),
        ("spherex-spectrum DATA --ra 10 --dec 5 --name ../x", "name '../x' must be"),
        ("spherex-spectrum DATA --ra 10 --dec 5", "overlaps the sky pixel of any of the 1 target(s)"),
        ("spherex-spectrum NOWHERE --ra 10 --dec 5", "NOWHERE: no such repository"),
    ]
    for command, message in cases:
        result = run(command, work, expect=1)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], (command, lines)


@pytest.mark.slow
def test_pipetask_run_gives_the_same_spectra(workflow: dict) -> None:
    """The README's `butler ingest-targets` + `pipetask run` make what `spherex-spectrum` made."""
    from spherex.script.spectrum import read_spectra

    ours = spectra(workflow)
    with Butler.from_config(workflow["repo"]) as butler:
        theirs = read_spectra(butler, "u/spectra")
    assert set(theirs) == set(ours)
    for name, table in theirs.items():
        np.testing.assert_array_equal(table["flux"], ours[name]["flux"])
        np.testing.assert_array_equal(table["used"], ours[name]["used"])
