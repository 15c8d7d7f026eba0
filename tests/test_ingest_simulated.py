"""``butler ingest-simulated``: raws and dark calibrations into a real repository."""

from __future__ import annotations

import os
from pathlib import Path

import lsst.sphgeom
import pytest
from astropy.io import fits
from astropy.time import Time
from click.testing import CliRunner
from lsst.daf.butler import Butler, CollectionType
from lsst.daf.butler.cli.butler import cli as butler_cli

from spherex.script import ingest_simulated

from .conftest import SIM_EXPOSURES

N_RAWS = SIM_EXPOSURES * 6


def butler(*args: str, expect: int = 0) -> tuple[str, str]:
    result = CliRunner().invoke(butler_cli, list(args))
    assert result.exit_code == expect, f"exit {result.exit_code}\n{result.output}\n{result.stderr}"
    return result.stdout, result.stderr


def raw_refs(repo: str, collection: str = "rawexpr") -> list:
    with Butler.from_config(repo) as b:
        if "rawexp" not in {t.name for t in b.registry.queryDatasetTypes()}:
            return []
        return b.query_datasets("rawexp", collections=collection, explain=False, limit=None)


def test_ingest_raws_records_from_headers(repo: str, simulated_dir: Path) -> None:
    out, _ = butler("ingest-simulated", repo, str(simulated_dir))
    assert f"Ingested {N_RAWS} rawexp files ({SIM_EXPOSURES} exposures) into rawexpr; 0 failed." in out
    with Butler.from_config(repo) as b:
        refs = b.query_datasets("rawexp", collections="rawexpr")
        assert len(refs) == N_RAWS
        assert {ref.dataId["detector"] for ref in refs} == {1, 2, 3, 4, 5, 6}
        for record in b.query_dimension_records("exposure"):
            header = fits.getheader(simulated_dir / f"sim_exposure_{record.id:06d}_array_1.fits")
            assert record.obs_id == header["OBSID"]
            assert record.exposure_time == pytest.approx(header["EXPTIME"])
            assert abs((record.timespan.begin - Time(header["DATE-OBS"], scale="utc")).sec) < 1e-3
            assert (record.timespan.end - record.timespan.begin).sec == pytest.approx(header["EXPTIME"])
            assert record.tracking_ra == pytest.approx(header["RA_BORE"])
            assert record.tracking_dec == pytest.approx(header["DEC_BORE"])
            assert record.region is not None
        # Every detector of every exposure has its own footprint.
        assert len(b.query_dimension_records("exposure_detector_region")) == N_RAWS


def test_healpix_query_finds_overlapping_files(repo: str, simulated_dir: Path) -> None:
    butler("ingest-simulated", repo, str(simulated_dir))
    with Butler.from_config(repo) as b:
        (record,) = b.query_dimension_records(
            "exposure_detector_region", where="instrument = 'simulator' AND exposure = 0 AND detector = 2"
        )
        centre = record.region.getCentroid()
        pixel = lsst.sphgeom.HealpixPixelization(7).index(centre)
    out, _ = butler(
        "query-datasets", repo, "rawexp", "--collections", "rawexpr", "--where", f"healpix7 = {pixel}"
    )
    lines = out.strip().splitlines()
    columns = lines[0].split()
    rows = [dict(zip(columns, line.split(), strict=True)) for line in lines[2:]]
    found = {(int(row["exposure"]), int(row["detector"])) for row in rows}
    # Array 5 sees the same sky as array 2 through the dichroic; arrays 1 and 3 are beside it.
    assert {(0, 2), (0, 5)} <= found
    assert not {(0, 1), (0, 3), (0, 4), (0, 6)} & found


def test_darks_are_calibrations_found_by_time(repo: str, simulated_dir: Path) -> None:
    butler("ingest-simulated", repo, str(simulated_dir))
    out, _ = butler(
        "ingest-simulated", "--regex", "dark_current.fits", "--ingest-type", "dark", repo, str(simulated_dir)
    )
    assert f"Ingested {N_RAWS} dark files" in out
    with Butler.from_config(repo) as b:
        assert b.collections.get_info("darkr").type == CollectionType.CALIBRATION
        for exposure in b.query_dimension_records("exposure"):
            for detector in (1, 6):
                dark = b.find_dataset(
                    "dark",
                    collections="darkr",
                    timespan=exposure.timespan,
                    instrument="simulator",
                    detector=detector,
                )
                assert dark is not None
                # The dark valid at the exposure's time is the one taken with it.
                header = fits.getheader(b.getURI(dark).ospath)
                assert header["EXPID"] == exposure.id
                assert header["DETECTOR"] == detector


def test_darks_ingested_later_do_not_need_same_day(repo: str, simulated_dir: Path, tmp_path: Path) -> None:
    # Darks first, in two batches and in reverse order of time: validity ranges are from headers.
    darks = sorted(simulated_dir.glob("*dark_current.fits"))
    late = [d for d in darks if "exposure_000002" in d.name]
    for batch in (late, [d for d in darks if d not in late]):
        ingest_simulated(repo, [str(p) for p in batch], regex="dark_current.fits", ingest_type="dark")
    ingest_simulated(repo, [str(simulated_dir)])
    with Butler.from_config(repo) as b:
        for exposure in b.query_dimension_records("exposure"):
            dark = b.find_dataset(
                "dark", collections="darkr", timespan=exposure.timespan, instrument="simulator", detector=3
            )
            assert fits.getheader(b.getURI(dark).ospath)["EXPID"] == exposure.id


def test_corrupt_file_fails_alone(repo: str, simulated_copy: Path) -> None:
    bad = simulated_copy / "sim_exposure_000001_array_3.fits"
    bad.write_bytes(bad.read_bytes()[:1000])
    out, err = butler("ingest-simulated", repo, str(simulated_copy), expect=1)
    assert f"{bad}: not a readable FITS file" in err
    assert "Traceback" not in out + err
    # The bad file alone fails; the five others of its exposure land, as they would were it missing.
    assert f"Ingested {N_RAWS - 1} rawexp files ({SIM_EXPOSURES} exposures)" in out and "1 failed" in out
    with Butler.from_config(repo) as b:
        refs = b.query_datasets("rawexp", collections="rawexpr")
        assert {r.dataId["detector"] for r in refs if r.dataId["exposure"] == 1} == {1, 2, 4, 5, 6}
        assert {r.id for r in b.query_dimension_records("exposure")} == {0, 1, 2}


def test_missing_header_keyword_named(repo: str, simulated_copy: Path) -> None:
    bad = simulated_copy / "sim_exposure_000002_array_6.fits"
    with fits.open(bad, mode="update") as hdus:
        del hdus[0].header["EXPTIME"]
    _, err = butler("ingest-simulated", repo, str(bad), expect=1)
    assert f"{bad}: missing header keyword EXPTIME" in err


def test_ingest_is_idempotent(repo: str, simulated_dir: Path) -> None:
    butler("ingest-simulated", repo, str(simulated_dir))
    out, _ = butler("ingest-simulated", repo, str(simulated_dir))
    assert f"Ingested 0 rawexp files (0 exposures) into rawexpr; {N_RAWS} already present" in out
    assert len(raw_refs(repo)) == N_RAWS
    for _ in range(2):
        butler(
            "ingest-simulated",
            "--regex",
            "dark_current.fits",
            "--ingest-type",
            "dark",
            repo,
            str(simulated_dir),
        )
    with Butler.from_config(repo) as b:
        assert len(list(b.registry.queryDatasetAssociations("dark", collections="darkr"))) == N_RAWS


def test_transfer_move_keeps_sources_that_did_not_land(repo: str, simulated_copy: Path) -> None:
    bad = simulated_copy / "sim_exposure_000000_array_1.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    butler("ingest-simulated", "--transfer", "move", repo, str(simulated_copy), expect=1)
    left = sorted(p.name for p in simulated_copy.glob("sim_exposure_*_array_?.fits"))
    # The bad file did not land and is still where it was; every other file was moved.
    assert left == ["sim_exposure_000000_array_1.fits"]
    with Butler.from_config(repo) as b:
        for ref in b.query_datasets("rawexp", collections="rawexpr"):
            assert b.stored(ref)


def test_transfer_direct_leaves_files_in_place(repo: str, simulated_dir: Path) -> None:
    butler("ingest-simulated", "--transfer", "direct", repo, str(simulated_dir))
    with Butler.from_config(repo) as b:
        for ref in b.query_datasets("rawexp", collections="rawexpr"):
            assert Path(b.getURI(ref).ospath).parent == simulated_dir


def test_custom_run_and_symlink(repo: str, simulated_dir: Path) -> None:
    butler("ingest-simulated", "--run", "raw/2025", "--transfer", "symlink", repo, str(simulated_dir))
    refs = raw_refs(repo, "raw/2025")
    assert len(refs) == N_RAWS
    with Butler.from_config(repo) as b:
        assert os.path.islink(b.getURI(refs[0]).ospath)


def test_progress_bar(repo: str, simulated_dir: Path) -> None:
    result = CliRunner().invoke(butler_cli, ["--progress", "ingest-simulated", repo, str(simulated_dir)])
    assert result.exit_code == 0
    assert "Reading headers" in result.output and "Ingesting exposures" in result.output


def test_bad_location_and_regex(repo: str, tmp_path: Path) -> None:
    _, err = butler("ingest-simulated", repo, str(tmp_path / "nowhere"), expect=1)
    assert f"{tmp_path / 'nowhere'}: no such file or directory" in err
    _, err = butler("ingest-simulated", "--regex", "(", repo, str(tmp_path), expect=1)
    assert "Invalid --regex" in err and "Traceback" not in err


def test_ingest_hands_the_butler_data_ids_expanded_with_the_records_it_writes(
    repo: str, simulated_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``butler.ingest`` is given data IDs that carry their records (it then skips its own registry
    lookup), and those records are the ones the registry holds after the ingest."""
    from lsst.daf.butler.direct_butler import DirectButler

    handed: list = []
    original = DirectButler.ingest

    def recording_ingest(self: DirectButler, *datasets, **kwargs):  # type: ignore[no-untyped-def]
        handed.extend(ref.dataId for dataset in datasets for ref in dataset.refs)
        return original(self, *datasets, **kwargs)

    monkeypatch.setattr(DirectButler, "ingest", recording_ingest)
    report = ingest_simulated(repo, [str(simulated_dir)])
    assert report.ok and len(handed) == len(report.ingested) > 0
    assert all(data_id.hasRecords() for data_id in handed)
    with Butler.from_config(repo) as b:
        for data_id in handed:
            stored = {
                element: next(iter(b.query_dimension_records(element, data_id=data_id)))
                for element in ("exposure", "detector", "exposure_detector_region")
            }
            for element, record in stored.items():
                attached = data_id.records[element]
                assert attached.toDict() == record.toDict(), element
