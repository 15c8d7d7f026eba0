"""A source changed between its check and its transfer is not registered; the rest of the batch is."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from lsst.daf.butler import Butler

from spherex.script import ingest_simulated
from spherex.script.ingest.metadata import read_observations

# The module, not the function of the same name that spherex.script exports.
ingest_module = importlib.import_module("spherex.script.ingest.simulated")


@pytest.mark.parametrize("transfer", ["copy", "move", "symlink"])
def test_file_appended_to_after_its_check_is_not_registered(
    repo: str, simulated_copy: Path, monkeypatch: pytest.MonkeyPatch, transfer: str
) -> None:
    victim = simulated_copy / "sim_exposure_000001_array_2.fits"
    original = victim.read_bytes()

    def read_then_another_process_appends(*args, **kwargs):  # type: ignore[no-untyped-def]
        # Every file has been checked; another process (a download still running) appends to one.
        groups = read_observations(*args, **kwargs)
        with victim.open("ab") as stream:
            stream.write(b"\0" * 2880)
        return groups

    monkeypatch.setattr(ingest_module, "read_observations", read_then_another_process_appends)
    report = ingest_simulated(repo, [str(simulated_copy)], transfer=transfer)
    reasons = {f.path: f.reason for f in report.failed}
    assert set(reasons) == {str(p) for p in simulated_copy.glob("sim_exposure_000001_array_?.fits")}
    assert (
        f"{victim}: changed after it was checked (size {len(original)} -> {len(original) + 2880} bytes)"
        in reasons[str(victim)]
    )
    assert report.exposures == {0, 2} and len(report.ingested) == 12
    with Butler.from_config(repo) as b:
        refs = b.query_datasets("rawexp", collections="rawexpr", explain=False)
        assert {ref.dataId["exposure"] for ref in refs} == {0, 2}
        for ref in refs:  # everything registered reads
            assert b.get(ref).data.shape == (48, 48)
    assert victim.exists()  # a failed move keeps its source
