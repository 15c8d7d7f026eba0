"""The README's section "Real SPHEREx Level-2 spectral images", run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import make_repo

README = Path(__file__).parent.parent / "README.md"
SECTION = "## Real SPHEREx Level-2 spectral images"


def section_blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return re.findall(r"```(bash|python)\n(.*?)```", text[start:end], flags=re.S)


def test_readme_level2_section_runs_as_written(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # The first two blocks; the deep-field block after them is run by tests/test_simulator_spectra.py.
    blocks = section_blocks()[:2]
    assert [language for language, _ in blocks] == ["bash", "python"]
    # DATA is the repository the README's earlier section creates with `butler create`.
    make_repo(tmp_path / "DATA", register_instrument=False)
    environment = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for command in blocks[0][1].strip().splitlines():
        result = subprocess.run(
            command, shell=True, cwd=tmp_path, env=environment, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace: dict = {}
        exec(compile(blocks[1][1], "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    image, hit, zone, psf = (namespace[name] for name in ("image", "hit", "zone", "psf"))
    assert 0 <= zone < len(image.psf_model.cube) and (psf == image.psf_model.cube[zone]).all()
    assert float(image.wavelength_at(hit.x, hit.y)[0]) == pytest.approx(hit.wavelength, abs=1e-6)
    assert str(hit.ref.dataId["exposure"]) in capsys.readouterr().out
