"""``butler ingest-simulated`` under faults: SIGKILL at random moments, concurrent ingests, ``--transfer
move`` and path values that try to leave the repository.

The CI variants kill 3 times and run each concurrent pair once; ``pytest -m slow`` runs the long
variants (20 kills of a copy ingest, 10 of a move ingest).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from astropy.io import fits
from lsst.daf.butler import Butler

from spherex.script import ingest_simulated

from .conftest import make_repo, venv_script

DETECTORS = 6


def clone_exposures(template_dir: Path, outdir: Path, exposures: range) -> list[Path]:
    """Write the six arrays of simulated exposure 0 again under other exposure ids (cheaper than simulating).

    Parameters
    ----------
    template_dir : `pathlib.Path`
        Directory with ``sim_exposure_000000_array_<d>.fits``.
    outdir : `pathlib.Path`
        Where to write.
    exposures : `range`
        Exposure ids to write.

    Returns
    -------
    paths : `list` [`pathlib.Path`]
        The files written.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for detector in range(1, DETECTORS + 1):
        with fits.open(template_dir / f"sim_exposure_000000_array_{detector}.fits") as hdul:
            hdul = fits.HDUList([hdu.copy() for hdu in hdul])
        for exposure in exposures:
            hdul[0].header["EXPID"] = exposure
            hdul[0].header["OBSID"] = f"sim_{exposure:06d}"
            path = outdir / f"sim_exposure_{exposure:06d}_array_{detector}.fits"
            hdul.writeto(path)
            paths.append(path)
    return sorted(paths)


@dataclass
class RepoState:
    """What a repository holds after a fault, as a fresh Butler sees it."""

    datasets: dict[tuple[int, int], str]
    """(exposure, detector) -> stored file."""
    exposures: set[int]
    orphans: int
    """Files in the run directory that no dataset owns (left by transactions that never committed)."""


def check_repository(repo: str, sources: dict[tuple[int, int], Path] | None = None) -> RepoState:
    """Assert the promises of a repository after a crash; return what it holds.

    The SQLite database passes ``PRAGMA integrity_check``; a fresh Butler opens the repository; every
    dataset in the registry has its file, of the size of its source; every exposure present has all six
    arrays, its exposure record and its six footprints.
    """
    with sqlite3.connect(Path(repo) / "spherex.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with Butler.from_config(repo) as b:
        types = {t.name for t in b.registry.queryDatasetTypes()}
        refs = []
        # A process killed early may have registered the dataset type but not yet the run.
        if "rawexp" in types and b.collections.query("rawexpr"):
            refs = b.query_datasets("rawexp", collections="rawexpr", explain=False, limit=None)
        datasets = {}
        for ref in refs:
            path = b.getURI(ref).ospath
            assert os.path.isfile(path), f"{ref.dataId}: registered but its file {path} is missing"
            key = (ref.dataId["exposure"], ref.dataId["detector"])
            if sources is not None and key in sources and sources[key].exists():
                assert os.path.getsize(path) == sources[key].stat().st_size, path
            datasets[key] = path
        records = {r.id for r in b.query_dimension_records("exposure", explain=False)}
        footprints = b.query_dimension_records("exposure_detector_region", explain=False)
        regions = Counter(r.exposure for r in footprints)
    per_exposure = Counter(exposure for exposure, _ in datasets)
    partial = {e: n for e, n in per_exposure.items() if n != DETECTORS}
    assert not partial, f"exposures partially present: {partial}"
    assert records == set(per_exposure), "exposure records without their datasets, or the reverse"
    assert all(regions[e] == DETECTORS for e in records)
    run_dir = Path(repo) / "rawexpr"
    on_disk = {str(p) for p in run_dir.rglob("*") if p.is_file()} if run_dir.exists() else set()
    return RepoState(datasets, records, len(on_disk - set(datasets.values())))


def ingest_process(repo: str, source: Path, *options: str) -> subprocess.Popen:
    return subprocess.Popen(
        [venv_script("butler"), "ingest-simulated", *options, repo, str(source)],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_at_random(
    process: subprocess.Popen,
    repo: str,
    rng: random.Random,
    n_files: int,
    by_time: float = 0.5,
    latest: float = 6.0,
) -> str:
    """SIGKILL the process group at a random moment: after a random delay (with probability
    ``by_time``) or once a random number of files has appeared in the datastore (so that kills also
    land inside transactions, while files are being transferred)."""
    run_dir = Path(repo) / "rawexpr"
    if rng.random() < by_time:
        trigger, threshold = "time", rng.uniform(0.5, latest)
    else:
        trigger, threshold = "files", rng.randint(1, n_files)
    start = time.monotonic()
    while process.poll() is None:
        if trigger == "time":
            due = time.monotonic() - start >= threshold
        else:
            due = run_dir.exists() and sum(len(f) for _, _, f in os.walk(run_dir)) >= threshold
        if due:
            os.killpg(process.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    process.communicate(timeout=120)
    finished = "" if process.returncode == -signal.SIGKILL else " (finished first)"
    return f"{trigger}>={threshold:.3g}{finished}"


@pytest.fixture(scope="module")
def many_raws(tmp_path_factory: pytest.TempPathFactory, simulated_dir: Path) -> Path:
    """240 small raws: 40 exposures x 6 arrays."""
    out = tmp_path_factory.mktemp("many_raws")
    clone_exposures(simulated_dir, out, range(1000, 1040))
    return out


def sources_of(directory: Path) -> dict[tuple[int, int], Path]:
    found = {}
    for path in directory.glob("sim_exposure_*_array_?.fits"):
        parts = path.stem.split("_")
        found[int(parts[2]), int(parts[4])] = path
    return found


def crash_trials(
    repo: str, source: Path, trials: int, seed: int, *options: str, latest: float = 6.0
) -> list[str]:
    """Kill ``trials`` ingests; the first by time, the second and third while files are transferred,
    the others at random."""
    rng = random.Random(seed)
    n_files = len(sources_of(source))
    log = []
    for trial in range(trials):
        by_time = {0: 1.0, 1: 0.0, 2: 0.0}.get(trial, 0.5)
        how = kill_at_random(ingest_process(repo, source, *options), repo, rng, n_files, by_time, latest)
        state = check_repository(repo)
        log.append(f"{how}: {len(state.exposures)} exposures, {state.orphans} orphan files")
    return log


def complete_after_crashes(repo: str, source: Path, n_files: int) -> None:
    """Re-run the same ingest: it completes the set and duplicates nothing."""
    report = ingest_simulated(repo, [str(source)], transfer="copy")
    assert report.ok, report.failed[:3]
    state = check_repository(repo, sources_of(source))
    assert len(state.datasets) == n_files
    with Butler.from_config(repo) as b:
        refs = b.query_datasets("rawexp", collections="rawexpr", explain=False, limit=None)
        assert len(refs) == len({(r.dataId["exposure"], r.dataId["detector"]) for r in refs}) == n_files
        ref = next(r for r in refs if r.dataId["exposure"] == 1000 and r.dataId["detector"] == 3)
        assert b.get(ref).data.shape == (48, 48)


def test_sigkill_during_ingest_leaves_whole_exposures(tmp_path: Path, many_raws: Path) -> None:
    repo = make_repo(tmp_path / "DATA")
    log = crash_trials(repo, many_raws, 3, 8, "--transfer", "copy")
    print("\n".join(log))
    complete_after_crashes(repo, many_raws, len(sources_of(many_raws)))


@pytest.mark.slow
def test_sigkill_during_ingest_20_trials(tmp_path: Path, simulated_dir: Path) -> None:
    source = tmp_path / "raws"
    clone_exposures(simulated_dir, source, range(1000, 1060))  # 360 files, two transactions
    repo = make_repo(tmp_path / "DATA")
    rng = random.Random(20)
    log = []
    for trial in range(20):
        if trial and len(check_repository(repo).exposures) == 60:
            # A run finished before its kill: go on with a new repository, or later kills test nothing.
            repo = make_repo(tmp_path / f"DATA{trial}")
        how = kill_at_random(ingest_process(repo, source, "--transfer", "copy"), repo, rng, 360, latest=15.0)
        state = check_repository(repo)
        log.append(f"{how}: {len(state.exposures)} exposures, {state.orphans} orphan files")
    print("\n".join(log))
    complete_after_crashes(repo, source, 360)


def move_crash_trial(
    repo: str,
    source: Path,
    rng: random.Random,
    originals: dict[tuple[int, int], int],
    by_time: float = 0.5,
    latest: float = 6.0,
) -> str:
    """Kill a ``--transfer move`` ingest; every file must be either still at its source or stored."""
    process = ingest_process(repo, source, "--transfer", "move")
    how = kill_at_random(process, repo, rng, len(originals), by_time=by_time, latest=latest)
    state = check_repository(repo)
    left = sources_of(source)
    lost = [key for key in originals if key not in left and key not in state.datasets]
    assert not lost, f"files neither at their source nor in the repository: {lost[:5]}"
    for key, path in state.datasets.items():
        assert os.path.getsize(path) == originals[key]
    return f"{how}: {len(state.datasets)} stored, {len(left)} still at source"


def test_sigkill_during_move_loses_nothing(tmp_path: Path, simulated_dir: Path) -> None:
    source = tmp_path / "raws"
    clone_exposures(simulated_dir, source, range(2000, 2020))
    originals = {key: path.stat().st_size for key, path in sources_of(source).items()}
    repo = make_repo(tmp_path / "DATA")
    # Killed while files are being linked into the datastore, before the commit.
    print(move_crash_trial(repo, source, random.Random(5), originals, by_time=0.0))
    # Running the move again finishes it: everything stored once, every source gone.
    report = ingest_simulated(repo, [str(source)], transfer="move")
    assert report.ok
    assert not sources_of(source)
    assert len(check_repository(repo).datasets) == len(originals)


@pytest.mark.slow
def test_sigkill_during_move_10_trials(tmp_path: Path, simulated_dir: Path) -> None:
    source = tmp_path / "raws"
    clone_exposures(simulated_dir, source, range(2000, 2060))
    originals = {key: path.stat().st_size for key, path in sources_of(source).items()}
    repo = make_repo(tmp_path / "DATA")
    rng = random.Random(10)
    for trial in range(10):
        if trial and not sources_of(source):
            # The move finished before its kill: new repository and sources, or later kills test nothing.
            repo = make_repo(tmp_path / f"DATA{trial}")
            clone_exposures(simulated_dir, source, range(2000, 2060))
        print(move_crash_trial(repo, source, rng, originals, latest=15.0))
    assert ingest_simulated(repo, [str(source)], transfer="move").ok
    assert not sources_of(source)
    assert len(check_repository(repo).datasets) == len(originals)


def test_move_failure_keeps_sources_of_the_failed_exposure(repo: str, simulated_copy: Path) -> None:
    # The directory exposure 1 goes to is a file: its transaction fails after some of its files were
    # already linked into the datastore; the other exposures land.
    blocker = Path(repo) / "rawexpr" / "rawexp" / "SIM_2025W18" / "1"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    before = {p.name: p.read_bytes() for p in simulated_copy.glob("sim_exposure_*_array_?.fits")}
    report = ingest_simulated(repo, [str(simulated_copy)], transfer="move")
    failed = sorted({Path(f.path).name for f in report.failed})
    assert failed == [f"sim_exposure_000001_array_{d}.fits" for d in range(1, 7)]
    after = {p.name: p.read_bytes() for p in simulated_copy.glob("sim_exposure_*_array_?.fits")}
    # Exactly the failed exposure's files remain, byte for byte.
    assert after == {name: data for name, data in before.items() if "_000001_" in name}
    blocker.unlink()
    state = check_repository(repo)
    assert state.exposures == {0, 2} and state.orphans == 0


def test_concurrent_ingests_of_different_and_same_files(tmp_path: Path, simulated_dir: Path) -> None:
    """Two ``butler ingest-simulated`` at once: each has files of its own and both have a shared set."""
    repo = make_repo(tmp_path / "DATA")
    own = [tmp_path / "first", tmp_path / "second"]
    shared = tmp_path / "shared"
    clone_exposures(simulated_dir, own[0], range(3000, 3010))
    clone_exposures(simulated_dir, own[1], range(3010, 3020))
    clone_exposures(simulated_dir, shared, range(3020, 3030))
    processes = [
        subprocess.Popen(
            [venv_script("butler"), "ingest-simulated", "--transfer", "copy", repo, str(mine), str(shared)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mine in own
    ]
    outcomes = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        outcomes.append((process.returncode, out.strip().splitlines()[-1:]))
        assert "Traceback" not in err
        # Both finish, or one fails saying the database was busy.
        assert process.returncode == 0 or "database is locked" in err, err
    print(outcomes)
    for source in (*own, shared):
        assert ingest_simulated(repo, [str(source)]).ok  # re-runs complete whatever a failure left
    state = check_repository(repo, {key: p for d in (*own, shared) for key, p in sources_of(d).items()})
    assert len(state.datasets) == 180 and state.exposures == set(range(3000, 3030))


@pytest.mark.parametrize(
    "run", ["../../escape", "a/../../escape", "/abs/escape", "./x", "x//y", ""], ids=lambda r: repr(r)
)
def test_run_names_that_leave_the_repository_are_refused(repo: str, simulated_dir: Path, run: str) -> None:
    with pytest.raises(ValueError, match="Invalid --run"):
        ingest_simulated(repo, [str(simulated_dir)], run=run or " ")


def test_nothing_is_written_outside_the_repository(tmp_path: Path, simulated_dir: Path) -> None:
    """Header values that would steer the path template (GROUPNAM, OBSID) and hostile run names."""
    work = tmp_path / "work"
    source = work / "source"
    clone_exposures(simulated_dir, source, range(4000, 4004))
    for exposure, (key, value) in zip(
        range(4000, 4004),
        [("GROUPNAM", "../../../outside"), ("OBSID", "../../x"), ("GROUPNAM", "a/b"), ("OBSID", "..")],
        strict=True,
    ):
        fits.setval(source / f"sim_exposure_{exposure:06d}_array_2.fits", key, value=value)
    repo = make_repo(work / "a" / "b" / "DATA")

    def outside() -> set[str]:
        return {
            os.path.relpath(os.path.join(d, f), tmp_path)
            for d, _, files in os.walk(tmp_path)
            for f in files
            if not os.path.join(d, f).startswith(repo)
        }

    before = outside()
    report = ingest_simulated(repo, [str(source)])
    assert sorted(Path(f.path).name for f in report.failed if "not allowed" in f.reason) == [
        f"sim_exposure_{e:06d}_array_2.fits" for e in range(4000, 4004)
    ]
    assert ingest_simulated(repo, [str(source)], ingest_type="dark", regex="array_2.fits").failed
    for run in ("../../../outside", "../x", "rawexpr/../../.."):
        with pytest.raises(ValueError, match="Invalid --run"):
            ingest_simulated(repo, [str(source)], run=run)
        with pytest.raises(ValueError, match="Invalid --run"):
            ingest_simulated(repo, [str(source)], run=run, ingest_type="dark", regex="array_1.fits")
    assert outside() == before
    assert not list(Path(repo).rglob("*../*"))


@pytest.mark.slow
def test_four_concurrent_ingests_of_the_same_files(tmp_path: Path, simulated_dir: Path) -> None:
    """Four processes race for the same 60 exposures, three rounds on fresh repositories."""
    source = tmp_path / "raws"
    clone_exposures(simulated_dir, source, range(5000, 5060))
    for round_ in range(3):
        repo = make_repo(tmp_path / f"DATA{round_}")
        processes = [ingest_process(repo, source, "--transfer", "copy") for _ in range(4)]
        summaries = []
        for process in processes:
            out, err = process.communicate(timeout=600)
            assert "Traceback" not in err
            assert process.returncode == 0 or "database is locked" in err, err[-2000:]
            summaries.append((process.returncode, out.strip().splitlines()[-1]))
        print(summaries)
        assert ingest_simulated(repo, [str(source)]).ok
        state = check_repository(repo, sources_of(source))
        assert len(state.datasets) == 360 and state.orphans == 0


def test_losing_a_race_is_not_a_failure(repo: str, simulated_dir: Path) -> None:
    """The losing side of two ingests of the same files: it found nothing, another process committed the
    same datasets before its own write.  Its write conflicts, and the exposure counts as present."""
    from spherex.instrument import ObservationMetadata, SimulatorInstrument
    from spherex.script.ingest.exposures import ExposureIngest, hull, landed_meanwhile, write_exposures
    from spherex.script.ingest.sources import CheckedSources, local_file_uri
    from spherex.script.ingest.transfer import SourceTransfer

    assert ingest_simulated(repo, [str(simulated_dir)]).ok  # the winner
    with Butler.from_config(repo, writeable=True) as b:
        paths = sorted(simulated_dir.glob("sim_exposure_000001_array_?.fits"))
        observations = [ObservationMetadata.from_file(path) for path in paths]
        sources = CheckedSources()
        for path, obs in zip(paths, observations, strict=True):
            sources.add(local_file_uri(path), obs.path, None)
        dataset_type = b.get_dataset_type("rawexp")
        region = hull([o.region for o in observations])
        formatter = SimulatorInstrument().getRawFormatter({})
        item = ExposureIngest.make(
            "simulator", 1, observations, region, dataset_type, "rawexpr", formatter, sources
        )
        with pytest.raises(Exception, match="rawexpr"):
            write_exposures(b, [item], SourceTransfer("copy", False), sources)
        landed = landed_meanwhile(b, dataset_type, "rawexpr", item)
        assert landed is not None and sorted(landed) == list(range(1, 7))
    assert len(check_repository(repo).datasets) == 18
