"""README.md's workflow, run as written: every command of "The original workflow, step by step".

The commands are taken from the README itself (its ``bash`` and ``python`` blocks, in order), so the
README cannot drift from what works.  They run in a temporary directory laid out as the README says:
a checkout called ``spherex_butler_poc`` (here only the two folders the commands read) and
``test_spherex`` beside it, with the venv's ``bin`` first on ``PATH`` as after ``source .venv/bin/activate``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
RECOVERY_MARK = "# only after"
WORKFLOW = "## The original workflow, step by step"


def readme_blocks(heading: str) -> list[tuple[str, str]]:
    """Return the ``(language, code)`` of the fenced bash/python blocks in one README section."""
    text = README.read_text()
    assert heading in text, f"README.md has no section {heading!r}"
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^( *)```(bash|python)\n(.*?)^\1```", section, flags=re.M | re.S)
    blocks = [(language, textwrap.dedent(code)) for _, language, code in blocks]
    # Recovery commands for a crashed state are run by the test that makes that state
    # (tests/test_adversarial_recovery.py), not in sequence here.
    return [(language, code) for language, code in blocks if not code.startswith(RECOVERY_MARK)]


def as_script(blocks: list[tuple[str, str]]) -> str:
    """Turn the blocks into one bash script: ``> `` lines feed the interactive command above them."""
    lines = ["set -euo pipefail"]
    for language, code in blocks:
        if language == "python":
            lines += ["python - <<'PYTHON'", code.rstrip("\n"), "PYTHON"]
            continue
        interactive = [line[2:] for line in code.splitlines() if line.startswith("> ")]
        commands = [line for line in code.splitlines() if not line.startswith("> ")]
        if interactive:
            lines += [commands[0] + " <<'INPUT'", *interactive, "INPUT", *commands[1:]]
        else:
            lines += commands
    return "\n".join(lines) + "\n"


def test_workflow_section_is_complete() -> None:
    blocks = readme_blocks(WORKFLOW)
    text = "\n".join(code for _, code in blocks)
    for command in (
        "spherex-simulate",
        "butler create",
        "butler ingest-simulated",
        "sqlite3",
        "pipetask qgraph",
        "dot -Tpdf",
        "pipetask run",
        "--prune-replaced=purge",
        "query-datasets",
    ):
        assert command in text


def test_workflow_runs_as_written(tmp_path: Path) -> None:
    if shutil.which("sqlite3") is None or shutil.which("dot") is None:
        pytest.skip("the README's workflow uses the sqlite3 and Graphviz dot commands")
    checkout = tmp_path / "spherex_butler_poc"
    shutil.copytree(ROOT / "pipelines", checkout / "pipelines")
    shutil.copytree(ROOT / "python" / "spherex" / "configs", checkout / "python" / "spherex" / "configs")
    script = as_script(readme_blocks(WORKFLOW))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    completed = subprocess.run(
        ["bash", "-c", script], cwd=checkout, env=env, capture_output=True, text=True, check=False
    )
    out = completed.stdout
    assert completed.returncode == 0, f"{completed.stderr[-3000:]}\n--- script ---\n{script}"
    work = tmp_path / "test_spherex"
    assert (work / "qgraph.pdf").read_bytes()[:4] == b"%PDF"
    assert "file_datastore_records" in out  # the sqlite3 session listed the tables
    assert "Ingested 24 rawexp files (4 exposures) into rawexpr; 0 failed." in out
    assert "Ingested 24 dark files (4 dark epochs) into darkr; 0 failed." in out
    # Step 9: the point query and the pixel query each find the files of both arrays that see that sky
    # (1 and 4 of exposure 0, through the dichroic), and nothing else.
    hits = [line.split() for line in out.splitlines() if line.startswith("rawexp rawexpr")]
    assert sorted((h[4], h[5]) for h in hits) == [("1", "0"), ("1", "0"), ("4", "0"), ("4", "0")], hits
    # Step 8 replaced the run of step 7: one run in the chain, and nothing left of the purged one.
    runs = sorted(p.name for p in (work / "DATA" / "subtractr").iterdir())
    assert len(runs) == 1, runs
