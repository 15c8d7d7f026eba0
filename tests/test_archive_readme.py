"""The README's section "IRSA's archive in place", run as written against IRSA-like servers on 127.0.0.1.

The files are a simulated deep field over the README's position (M101), laid out as IRSA keeps them and
served by `tests.archive_http`; `tests.irsa_tap` answers the TAP query.  Only ``SPHEREX_TAP_URL`` and
``SPHEREX_IRSA_BASE_URL`` differ from a user's environment.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from astropy.table import Table
from lsst.daf.butler import Butler

from .archive_http import ArchiveHttpServer, lay_out_as_irsa
from .conftest import make_repo
from .irsa_tap import IrsaTapServer

README = Path(__file__).parent.parent / "README.md"
SECTION = "## IRSA's archive in place"


def test_readme_archive_section_runs_as_written(tmp_path: Path) -> None:
    from spherex.simulator.cli import main as simulate

    text = README.read_text()
    start = text.index(SECTION)
    block = re.findall(r"```bash\n(.*?)```", text[start : text.index("\n## ", start + 1)], flags=re.S)[0]
    ra, dec = (float(v) for v in re.search(r"--ra ([\d.]+) --dec ([\d.]+)", block).groups())
    try:
        simulate(
            [str(tmp_path / "sim"), "--format", "level2", "--size", "64", "--detectors", "2", "--seed", "3",
             "--deep-field", str(ra), str(dec), "--deep-field-steps", "1", "--deep-field-sources", "1"],
            standalone_mode=False,
        )  # fmt: skip
    except SystemExit as err:  # pragma: no cover - click's exit on success
        assert err.code == 0
    paths = sorted((tmp_path / "sim").glob("level2_*.fits"))
    relative = lay_out_as_irsa(paths, tmp_path / "root")
    make_repo(tmp_path / "DATA", register_instrument=False)
    with (
        IrsaTapServer([(r, tmp_path / "root" / r) for r in relative]) as tap,
        ArchiveHttpServer(tmp_path / "root") as http,
    ):
        env = dict(
            os.environ,
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            SPHEREX_TAP_URL=tap.url,
            SPHEREX_IRSA_BASE_URL=http.base_url,
        )
        for command in block.strip().splitlines():
            result = subprocess.run(
                command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True
            )
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        listed = Table.read(tmp_path / "m101_files.csv", format="ascii.csv")
        assert len(listed) > 0 and set(listed["band"]) == {"D2"}
        with Butler(str(tmp_path / "DATA")) as butler:
            refs = butler.query_datasets("spectralImage", collections="SPHEREx/*", find_first=False)
            assert {butler.getURI(r).geturl() for r in refs} == set(listed["url"])  # in place
        spectrum = Table.read(tmp_path / "m101_spectra" / "m101.ecsv")
        assert len(spectrum) > 0
        # Headers and cutouts only, never the files.
        assert http.bytes_sent() < 0.5 * sum(p.stat().st_size for p in paths)
