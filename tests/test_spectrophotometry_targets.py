"""``butler ingest-targets``: target catalogues stored per common sky pixel, bad rows refused whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsst.daf.butler import Butler
from lsst.daf.butler.cli.butler import cli as butler_cli

from spherex.script.ingest.targets import (
    TARGET_DATASET_TYPE,
    TargetCatalogError,
    ingest_targets,
    read_targets,
    target_pixel,
)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def run_butler(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(butler_cli, list(args))
    return result.exit_code, result.output


def stored_targets(repo: str, run: str = "targets") -> dict[str, tuple[float, float, str, int]]:
    with Butler.from_config(repo) as butler:
        out = {}
        for ref in butler.query_datasets(TARGET_DATASET_TYPE, collections=run, explain=False):
            for row in butler.get(ref):
                out[str(row["name"])] = (
                    float(row["ra"]),
                    float(row["dec"]),
                    str(row["kind"]),
                    ref.dataId["healpix7"],
                )
        return out


def test_ingest_targets_stores_one_catalogue_per_healpix7_pixel(repo: str, tmp_path: Path) -> None:
    csv = write_csv(
        tmp_path / "targets.csv",
        "name,ra,dec,kind\nstar1,10.0,-5.0,star\nstar2,10.001,-5.001,\ngal1,200.5,60.25,galaxy\n",
    )
    code, output = run_butler("ingest-targets", repo, str(csv))
    assert code == 0, output
    assert "Ingested 3 targets into targets (2 sky pixels)" in output
    stored = stored_targets(repo)
    assert set(stored) == {"star1", "star2", "gal1"}
    assert stored["gal1"][:3] == (200.5, 60.25, "galaxy")
    with Butler.from_config(repo) as butler:
        # Each target sits in the catalogue of the healpix7 pixel that contains it.
        for ra, dec, _, pixel in stored.values():
            assert pixel == target_pixel(butler, ra, dec)
    assert stored["star1"][3] == stored["star2"][3] != stored["gal1"][3]

    # Again: nothing new; then one more target in an existing pixel joins that pixel's catalogue.
    code, output = run_butler("ingest-targets", repo, str(csv))
    assert code == 0 and "Ingested 0 targets" in output and "3 already present" in output
    more = write_csv(tmp_path / "more.csv", "name,ra,dec\nstar3,10.0005,-5.0005\n")
    code, output = run_butler("ingest-targets", repo, str(more))
    assert code == 0, output
    stored = stored_targets(repo)
    assert len(stored) == 4 and stored["star3"][3] == stored["star1"][3]


def test_csv_saved_by_excel_ingests(repo: str, tmp_path: Path) -> None:
    # Excel's "CSV UTF-8": a byte-order mark before the first column name, CRLF line ends, and the
    # column names as a person types them.
    csv = tmp_path / "bom.csv"
    csv.write_bytes(
        "\ufeffName,RA,Dec,Kind\r\nM31,10.6847,41.2690,galaxy\r\nVega,279.2347,38.7837,star\r\n".encode()
    )
    code, output = run_butler("ingest-targets", repo, str(csv))
    assert code == 0, output
    assert "Ingested 2 targets into targets" in output
    stored = stored_targets(repo)
    assert set(stored) == {"M31", "Vega"}
    assert stored["M31"][:3] == (10.6847, 41.269, "galaxy")


def test_csv_in_a_windows_code_page_names_the_fix(repo: str, tmp_path: Path) -> None:
    # Excel's plain "CSV (Comma delimited)" writes Windows-1252: one line saying how to save it instead.
    csv = tmp_path / "cp1252.csv"
    csv.write_bytes("name,ra,dec\r\nB\xe9ta,1,2\r\n".encode("cp1252"))
    code, output = run_butler("ingest-targets", repo, str(csv))
    assert code != 0
    (line,) = output.strip().splitlines()
    assert str(csv) in line and "not a UTF-8 text file" in line and "save as 'CSV UTF-8'" in line


BAD_ROWS = [
    ("name,ra\nx,1\n", "row 1: missing column(s) dec"),
    ("name,ra,dec\nx,abc,1\n", "row 2: ra 'abc' is not a number"),
    ("name,ra,dec\nx,1,2\ny,1,91\n", "row 3: dec 91 is outside -90 to 90 degrees"),
    ("name,ra,dec\nx,361,0\n", "row 2: ra 361 is outside 0 to 360 degrees"),
    ("name,ra,dec\nx,nan,0\n", "row 2: ra nan is outside"),
    ("name,ra,dec\nx,1,2\nx,3,4\n", "row 3: duplicate name 'x' (first on row 2)"),
    ("name,ra,dec\n../evil,1,2\n", "row 2: name '../evil' must be"),
    ("name,ra,dec\na/b,1,2\n", "row 2: name 'a/b' must be"),
    ("name,ra,dec\n.hidden,1,2\n", "row 2: name '.hidden' must be"),
    ("name,ra,dec\n%2e%2e,1,2\n", "row 2: name '%2e%2e' must be"),
    ("name,ra,dec\nx,1\n", "row 2: expected 3 fields"),
    ("name,ra,dec\n", "no targets"),
]


@pytest.mark.parametrize(("text", "message"), BAD_ROWS)
def test_bad_catalogue_is_one_line_and_registers_nothing(
    repo: str, tmp_path: Path, text: str, message: str
) -> None:
    csv = write_csv(tmp_path / "bad.csv", text)
    code, output = run_butler("ingest-targets", repo, str(csv))
    assert code != 0
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    assert str(csv) in lines[0] and message in lines[0], lines[0]
    with Butler.from_config(repo) as butler:
        assert "targets" not in butler.collections.query("*")


def test_conflicting_position_of_a_known_name_is_refused(repo: str, tmp_path: Path) -> None:
    assert ingest_targets(repo, write_csv(tmp_path / "a.csv", "name,ra,dec\nsrc,10,10\n")).added == 1
    with pytest.raises(TargetCatalogError, match="'src' is already in run targets at ra=10.0000000"):
        ingest_targets(repo, write_csv(tmp_path / "b.csv", "name,ra,dec\nnew,11,11\nsrc,10.5,10\n"))
    assert set(stored_targets(repo)) == {"src"}  # "new" was not registered either


def test_fifo_and_binary_files_are_refused(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    with pytest.raises(TargetCatalogError, match="not a regular file"):
        read_targets(fifo)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"name,ra,dec\n\xff\xfe,1,2\n")
    with pytest.raises(TargetCatalogError, match="not a UTF-8 text file"):
        read_targets(binary)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ra=st.floats(allow_nan=True, allow_infinity=True),
    dec=st.floats(allow_nan=True, allow_infinity=True),
    name=st.text(min_size=0, max_size=70),
)
def test_read_targets_accepts_exactly_the_valid_rows(
    tmp_path: Path, ra: float, dec: float, name: str
) -> None:
    import re

    path = tmp_path / "h.csv"
    path.write_text(f'name,ra,dec\n"{name.replace(chr(34), "")}",{ra!r},{dec!r}\n', encoding="utf-8")
    clean = name.replace('"', "").strip()
    valid = (
        0 <= ra <= 360
        and -90 <= dec <= 90
        and re.fullmatch(r"[A-Za-z0-9_+\-][A-Za-z0-9_.+\-]{0,63}", clean) is not None
        and "\n" not in name
        and "\r" not in name
    )
    try:
        table = read_targets(path)
    except TargetCatalogError as err:
        assert not valid, err
        assert str(err).startswith(str(path))
    else:
        assert valid
        assert table["name"][0] == clean and 0 <= table["ra"][0] < 360 and table["dec"][0] == dec


def test_ingest_targets_refuses_a_version_2_repository_in_one_line(tmp_path: Path) -> None:
    """A repository of the earlier universe (common skypix healpix8) cannot feed the spectrophotometry
    tasks (healpix7): ``butler ingest-targets`` says so in one line and registers nothing."""
    from importlib.resources import files

    from lsst.daf.butler.script import createRepo

    from spherex.instrument import SimulatorInstrument

    dims = files("spherex.configs").joinpath("dimensions.yaml").read_text()
    assert "version: 3" in dims and "common: healpix7" in dims
    old_dims = tmp_path / "dimensions-v2.yaml"
    old_dims.write_text(
        dims.replace("version: 3", "version: 2").replace("common: healpix7", "common: healpix8")
    )
    repo = str(tmp_path / "OLD")
    createRepo(repo, seed_config="resource://spherex/configs/butler.yaml", dimension_config=str(old_dims))
    with Butler.from_config(repo, writeable=True) as butler:
        SimulatorInstrument().register(butler.registry)
    csv = write_csv(tmp_path / "t.csv", "name,ra,dec\nstar1,10.0,-5.0\n")

    code, output = run_butler("ingest-targets", repo, str(csv))
    assert code != 0
    error_lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, output
    assert "version 2" in error_lines[0] and "healpix8" in error_lines[0] and "healpix7" in error_lines[0]
    with Butler.from_config(repo) as butler:
        assert TARGET_DATASET_TYPE not in {t.name for t in butler.registry.queryDatasetTypes()}
        assert "targets" not in set(butler.collections.query("*"))


def test_references_and_motion_columns_are_stored(repo: str, tmp_path: Path) -> None:
    """``--role reference`` marks every row; pmra/pmdec/epoch/parallax are kept, defaults where absent."""
    stars = write_csv(
        tmp_path / "stars.csv", "name,ra,dec,pmra,pmdec,epoch\nref1,10.0,-5.0,1000,-500,2016.0\n"
    )
    code, output = run_butler("ingest-targets", repo, str(stars), "--role", "reference")
    assert code == 0, output
    targets = write_csv(tmp_path / "targets.csv", "name,ra,dec\nt1,10.001,-5.0\n")
    assert run_butler("ingest-targets", repo, str(targets))[0] == 0
    with Butler.from_config(repo) as butler:
        rows = {
            str(row["name"]): row
            for ref in butler.query_datasets(TARGET_DATASET_TYPE, collections="targets")
            for row in butler.get(ref)
        }
    assert (rows["ref1"]["role"], rows["ref1"]["pmra"], rows["ref1"]["pmdec"]) == (
        "reference",
        1000.0,
        -500.0,
    )
    assert (rows["t1"]["role"], rows["t1"]["pmra"], rows["t1"]["parallax"]) == ("target", 0.0, 0.0)
    bad = write_csv(tmp_path / "bad.csv", "name,ra,dec,role\nx,1,1,neighbour\n")
    code, output = run_butler("ingest-targets", repo, str(bad))
    assert code != 0 and "bad.csv row 2: role 'neighbour' is not one of target, reference" in output
