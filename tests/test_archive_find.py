"""``spherex-archive find`` against a TAP endpoint answering IRSA's query, and ``--from-archive`` ingest.

The same commands as the README's against IRSA, with ``--tap-url`` pointing at `tests.irsa_tap`'s
server and ``--base-url`` at `tests.archive_http`'s.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from astropy.table import Table
from lsst.daf.butler import Butler

from spherex.core import SPHERExLevel2Image
from spherex.script.archive_find import level2_query

from .archive_http import ArchiveHttpServer, lay_out_as_irsa
from .conftest import make_repo, venv_script
from .irsa_tap import IrsaTapServer

SIZE = 64


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory):
    from spherex.simulator.level2 import simulate_level2

    work = tmp_path_factory.mktemp("find")
    paths = simulate_level2(work / "sim", exposures=3, size=SIZE, seed=4, detectors=[1, 2])
    relative = lay_out_as_irsa(paths, work / "root")
    files = [(r, work / "root" / r) for r in relative]
    with IrsaTapServer(files) as tap, ArchiveHttpServer(work / "root") as http:
        yield tap, http, files


def _find(tap: IrsaTapServer, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [venv_script("spherex-archive"), "find", "--tap-url", tap.url, *args],
        capture_output=True, text=True, env={**os.environ, "SPHEREX_ARCHIVE_BACKOFF": "0.01", **(env or {})},
    )  # fmt: skip


def _centre(path: Path) -> tuple[float, float]:
    wcs = SPHERExLevel2Image.read(str(path)).wcs
    ra, dec = wcs.pixel_to_world_values((SIZE - 1) / 2, (SIZE - 1) / 2)
    return float(ra), float(dec)


def _covering(files, ra: float, dec: float) -> set[str]:
    covering = set()
    for relative, path in files:
        x, y = SPHERExLevel2Image.read(str(path)).wcs.world_to_pixel_values(ra, dec)
        if -0.5 <= x <= SIZE - 0.5 and -0.5 <= y <= SIZE - 0.5:
            covering.add(relative)
    return covering


def test_find_lists_the_files_covering_a_position(archive, tmp_path: Path) -> None:
    tap, http, files = archive
    ra, dec = _centre(files[0][1])
    result = _find(
        tap, "--ra", str(ra), "--dec", str(dec), "--format", "csv", "--output", str(tmp_path / "f.csv")
    )
    assert result.returncode == 0, result.stderr
    table = Table.read(tmp_path / "f.csv", format="ascii.csv")
    expected = _covering(files, ra, dec)
    assert {u.removeprefix("https://irsa.ipac.caltech.edu/") for u in table["url"]} == expected
    assert list(table["mjd_begin"]) == sorted(table["mjd_begin"])  # IRSA's ORDER BY
    assert set(table["band"]) <= {"D1", "D2"} and set(table["detector"]) <= {1, 2}
    # IRSA's query, as its tutorial writes it, is what the service was asked.
    assert "FROM spherex.artifact a\nJOIN spherex.plane p ON a.planeid = p.planeid" in tap.queries[-1]
    assert f"CONTAINS(POINT('ICRS', {ra:.8f}, {dec:.8f}), p.poly)" in tap.queries[-1]

    band = _find(tap, "--ra", str(ra), "--dec", str(dec), "--band", "D1", "--s3")
    assert band.returncode == 0, band.stderr
    assert "SPHEREx-D1" in tap.queries[-1] and "s3://nasa-irsa-spherex/qr2/level2/" in band.stdout
    listed = [line for line in band.stdout.splitlines() if "s3://" in line]
    assert listed and all("D1_spx" in line for line in listed)
    assert len(listed) == sum(1 for u in expected if "D1_spx" in u)


def test_find_errors_are_one_line_naming_the_service(archive) -> None:
    tap, http, files = archive
    ra, dec = _centre(files[0][1])
    try:
        for mode, words in [
            ("error", "the TAP service refused the query (ADQL syntax error"),
            ("empty", f"no SPHEREx Level-2 file covers ({ra:g}, {dec:g})"),
            ("502", "the TAP service failed"),
        ]:
            tap.mode = mode
            result = _find(tap, "--ra", str(ra), "--dec", str(dec), env={"SPHEREX_ARCHIVE_RETRIES": "2"})
            assert result.returncode == 1, (mode, result.stdout)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"Error: {tap.url}: {words}"), (mode, lines)
    finally:
        tap.mode = "ok"
    bad = _find(tap, "--ra", "10", "--dec", "95")
    assert bad.returncode == 1 and "is not a position on the sky" in bad.stderr


def test_query_refuses_injection() -> None:
    with pytest.raises(ValueError, match="release"):
        level2_query(10.0, 20.0, release="qr2' OR 1=1 --")
    with pytest.raises(ValueError, match="band"):
        level2_query(10.0, 20.0, band="D7")


def test_targets_found_then_registered_in_place(archive, tmp_path: Path) -> None:
    tap, http, files = archive
    positions = [_centre(files[0][1]), _centre(files[-1][1])]
    catalogue = Table({"name": ["a", "b"], "ra": [p[0] for p in positions], "dec": [p[1] for p in positions]})
    catalogue.write(tmp_path / "targets.csv", format="ascii.csv")
    listing = tmp_path / "files.csv"
    result = _find(
        tap, "--targets", str(tmp_path / "targets.csv"), "--format", "csv", "--output", str(listing)
    )
    assert result.returncode == 0, result.stderr
    found = Table.read(listing, format="ascii.csv")
    assert set(found["target"]) == {"a", "b"}
    # IRSA's URLs, served here by the loopback archive: https://irsa.ipac.caltech.edu/ -> http://127.0.0.1
    found["url"] = [u.replace("https://irsa.ipac.caltech.edu", http.base_url) for u in found["url"]]
    found.write(listing, format="ascii.csv", overwrite=True)
    repo = make_repo(tmp_path / "repo")
    http.reset()
    ingest = subprocess.run(
        [venv_script("butler"), "ingest-spherex", repo, "--from-archive", str(listing)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    with Butler(repo) as butler:
        refs = butler.query_datasets("spectralImage", collections="SPHEREx/l2b-v20")
        assert {butler.getURI(r).geturl() for r in refs} == set(found["url"])
    assert http.stats()["ranges"]  # read by ranges, in place (--transfer direct)
    assert not list((Path(repo) / "SPHEREx").glob("**/*.fits"))  # nothing copied into the repository
