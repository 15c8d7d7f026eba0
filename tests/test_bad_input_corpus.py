"""A thousand bad files: ingest and the formatter each refuse them by name, and nothing of them lands."""

from __future__ import annotations

import re
import shutil
import subprocess
import tracemalloc
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsst.daf.butler import Butler, DatasetRef, DatasetType, FileDataset

from spherex.core import SPHERExImage, SPHERExImageError
from spherex.core.image.header_reader import UnusableWcsWarning
from spherex.formatters import SPHERExImageFormatter
from spherex.instrument import FileMetadataError, check_raw_file
from spherex.script import ingest_simulated

from .bad_fits_corpus import KINDS, BadFile, write_corpus
from .conftest import make_repo, venv_script

CORPUS_SIZE = 1000


@pytest.fixture(scope="module")
def template(simulated_dir: Path) -> Path:
    return simulated_dir / "sim_exposure_000000_array_1.fits"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, template: Path) -> list[BadFile]:
    return write_corpus(tmp_path_factory.mktemp("corpus"), template, count=CORPUS_SIZE, seed=1)


def test_corpus_covers_every_kind(corpus: list[BadFile]) -> None:
    kinds = Counter(bad.kind for bad in corpus)
    assert len(corpus) == CORPUS_SIZE and set(kinds) == set(KINDS)
    assert min(kinds.values()) >= CORPUS_SIZE // len(KINDS)


def test_ingest_refuses_every_bad_file_by_name(
    tmp_path: Path, corpus: list[BadFile], simulated_dir: Path
) -> None:
    # One good exposure among the bad files lands: bad files cost only themselves.
    for good in simulated_dir.glob("sim_exposure_000000_array_?.fits"):
        shutil.copy(good, corpus[0].path.parent / good.name)
    repo = make_repo(tmp_path / "DATA")
    try:
        report = ingest_simulated(repo, [str(corpus[0].path.parent)])
    finally:
        for good in simulated_dir.glob("sim_exposure_000000_array_?.fits"):
            (corpus[0].path.parent / good.name).unlink()
    reasons = {failure.path: failure.reason for failure in report.failed}
    assert len(reasons) == len(report.failed) == CORPUS_SIZE  # one line per file, no more
    wrong = [
        (bad.kind, reasons.get(str(bad.path)))
        for bad in corpus
        if not re.search(bad.expected, reasons.get(str(bad.path), ""))
    ]
    assert not wrong, wrong[:10]
    assert report.exposures == {0} and len(report.ingested) == 6
    with Butler.from_config(repo) as b:
        assert {r.id for r in b.query_dimension_records("exposure", explain=False)} == {0}
        assert len(b.query_datasets("rawexp", collections="rawexpr", explain=False)) == 6
    stored = [p for p in (Path(repo) / "rawexpr").rglob("*") if p.is_file()]
    assert len(stored) == 6 and all("_0_" in p.name for p in stored)


def test_check_raw_file_accepts_nan_and_inf_pixels(tmp_path: Path, template: Path) -> None:
    """Hot, dead and saturated pixels are data: only a plane without any finite pixel is refused."""
    image = SPHERExImage.from_fits(template)
    image.data[0, :5] = np.nan
    image.data[1, :5] = np.inf
    image.uncertainty.array[2, :3] = np.nan
    path = tmp_path / "sim_exposure_000000_array_1.fits"
    image.write(path)
    check_raw_file(path)
    image.data[...] = np.nan
    image.write(path, overwrite=True)
    with pytest.raises(FileMetadataError, match="IMAGE plane has no finite pixel"):
        check_raw_file(path)


def test_reader_refuses_structural_damage_by_name(corpus: list[BadFile]) -> None:
    """The formatter's reader on every file: a specific error naming the file, or the pixels as stored."""
    outcomes: Counter[str] = Counter()
    for bad in corpus:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", UnusableWcsWarning)
                image = SPHERExImage.from_fits(bad.path)
        except SPHERExImageError as err:
            assert str(bad.path) in str(err), (bad.kind, err)
            outcomes["refused"] += 1
            continue
        except FileNotFoundError:
            raise
        # A damaged WCS reads without one, warned by the file's name (CCDData.read's behaviour).
        for warning in caught:
            assert str(bad.path) in str(warning.message), (bad.kind, warning.message)
        # Only header-value problems (readable FITS) may read; their pixels come back as stored.
        assert not bad.structural, (bad.kind, "read without error")
        if bad.kind.endswith("all_nan") or bad.kind.endswith("all_inf"):
            plane = image.data if bad.kind.startswith("image") else image.uncertainty.array
            assert not np.isfinite(plane).any()
        outcomes["read"] += 1
    print(dict(outcomes))
    assert outcomes["refused"] >= sum(bad.structural for bad in corpus)


def test_butler_get_of_bad_files_names_them(tmp_path: Path, corpus: list[BadFile]) -> None:
    """One bad file of each kind put in a repository behind ingest's back (``butler.ingest`` direct):
    ``butler.get`` fails naming the file, or returns what the file holds."""
    repo = make_repo(tmp_path / "DATA")
    with Butler.from_config(repo, writeable=True) as b:
        dataset_type = DatasetType(
            "badraw", ("instrument", "detector"), "SPHERExImage", universe=b.dimensions
        )
        b.registry.registerDatasetType(dataset_type)
        samples = {bad.kind: bad for bad in corpus}
        refs = {}
        for kind, bad in samples.items():
            b.collections.register(f"bad/{kind}")
            ref = DatasetRef(dataset_type, {"instrument": "simulator", "detector": 1}, run=f"bad/{kind}")
            b.ingest(
                FileDataset(path=str(bad.path), refs=[ref], formatter=SPHERExImageFormatter),
                transfer="direct",
            )
            refs[kind] = ref
        for kind, ref in refs.items():
            try:
                b.get(ref)
            except (ValueError, OSError) as err:
                assert str(samples[kind].path) in str(err) + str(err.__cause__), (kind, err)
            else:
                assert not samples[kind].structural, kind


def test_header_claiming_a_trillion_pixels_allocates_nothing(corpus: list[BadFile]) -> None:
    huge = [bad.path for bad in corpus if bad.kind == "huge_naxis"]
    tracemalloc.start()
    try:
        for path in huge:
            with pytest.raises(FileMetadataError, match="truncated"):
                check_raw_file(path)
            with pytest.raises(SPHERExImageError, match="truncated"):
                SPHERExImage.from_fits(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"{len(huge)} files claiming 10^12 pixels: peak traced memory {peak / 2**20:.1f} MiB")
    assert peak < 16 * 2**20  # 10^12 float32 pixels would be 4 TB


def test_cli_prints_one_line_per_bad_file(tmp_path: Path, corpus: list[BadFile]) -> None:
    subset = tmp_path / "subset"
    subset.mkdir()
    chosen = corpus[: 4 * len(KINDS)]
    for bad in chosen:
        shutil.copy(bad.path, subset / bad.path.name)
    repo = make_repo(tmp_path / "DATA")
    result = subprocess.run(
        [venv_script("butler"), "ingest-simulated", repo, str(subset)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "WARNING" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == len(chosen), lines[:5]
    for line, bad in zip(lines, sorted(chosen, key=lambda b: str(b.path)), strict=True):
        assert line.startswith(f"error: {subset / bad.path.name}: ")
    assert f"Ingested 0 rawexp files (0 exposures) into rawexpr; {len(chosen)} failed." in result.stdout


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_any_byte_damage_is_refused_or_harmless(
    template: Path, tmp_path: Path, data: st.DataObject
) -> None:
    """Overwrite random bytes of a good raw: the check passes or raises `FileMetadataError`, nothing else."""
    raw = bytearray(template.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        offset = data.draw(st.integers(0, len(raw) - 1))
        chunk = data.draw(st.binary(min_size=1, max_size=80))
        raw[offset : offset + len(chunk)] = chunk
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(raw))))
    path = tmp_path / "sim_exposure_000000_array_1.fits"
    path.write_bytes(bytes(raw[:cut]))
    try:
        check_raw_file(path)
    except FileMetadataError as err:
        assert err.path == str(path) and err.problem
