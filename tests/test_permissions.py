"""Read-only repositories, unwritable datastore directories and missing repositories: one clear line each."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import shutil
import stat
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from lsst.daf.butler import Butler
from lsst.daf.butler.cli.butler import cli as butler_cli

from spherex.script import ingest_simulated

# Linux capabilities that let root ignore file permissions.
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2
_CAP_FOWNER = 3
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_permission_override(also_fowner: bool = False) -> None:
    """Make this (root) process obey file permissions: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.

    The process stays uid 0, so the interpreter and the venv remain readable; only files whose mode
    denies their owner (root) a write become unwritable, as they are for any user.  With
    ``also_fowner`` CAP_FOWNER goes too, so that ``fs.protected_hardlinks`` refuses to hard-link files
    owned by another user, as it does for an ordinary user.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    dropped = (1 << _CAP_DAC_OVERRIDE) | (1 << _CAP_DAC_READ_SEARCH) | ((1 << _CAP_FOWNER) * also_fowner)
    mask = ~dropped & 0xFFFFFFFF
    data[0].effective &= mask
    data[0].permitted &= mask
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def _invoke(args: list[str]) -> tuple[int, str, str]:
    """Run a butler command in this process; return exit code, stdout, and stderr with any log records."""
    records: list[str] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = lambda record: records.append(logging.Formatter().format(record))  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    try:
        result = CliRunner().invoke(butler_cli, args)
    finally:
        logging.getLogger().removeHandler(handler)
    err = result.stderr + "".join(line + "\n" for line in records)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        err += "Traceback (uncaught):\n" + "".join(traceback.format_exception(result.exception))
    return result.exit_code, result.stdout, err


def _child(args: list[str], queue: multiprocessing.Queue, also_fowner: bool = False) -> None:
    try:
        if os.geteuid() == 0:
            _drop_permission_override(also_fowner)
        queue.put(_invoke(args))
    except BaseException:
        queue.put((-1, "", traceback.format_exc()))


def butler_as_ordinary_user(*args: str, also_fowner: bool = False) -> tuple[int, str, str]:
    """Run a ``butler`` command in a forked process that obeys file permissions even as root."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_child, args=(list(args), queue, also_fowner))
    process.start()
    code, out, err = queue.get(timeout=300)
    process.join(timeout=60)
    assert code != -1, err
    return code, out, err


def butler(*args: str) -> tuple[int, str, str]:
    return _invoke(list(args))


def error_lines(err: str) -> list[str]:
    """The lines of stderr (and of the log) a user would read."""
    return [line for line in err.splitlines() if line.strip()]


def read_only(path: Path) -> Callable[[], None]:
    """Remove write permission under ``path``; return a function that restores it."""
    modes = {}
    for item in [path, *path.rglob("*")]:
        modes[item] = item.stat().st_mode
        item.chmod(item.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))

    def restore() -> None:
        for item, mode in modes.items():
            item.chmod(mode)

    return restore


needs_linux = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux capabilities")
# The forked child only runs the CLI in-process; the parent's threads (sqlite, logging) are not used there.
fork_ok = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")


def test_missing_repository_is_one_line(tmp_path: Path, simulated_dir: Path) -> None:
    code, out, err = butler("ingest-simulated", str(tmp_path / "no-repo"), str(simulated_dir))
    assert code == 1
    assert "Traceback" not in out + err
    (line,) = error_lines(err)
    assert str(tmp_path / "no-repo") in line
    assert not (tmp_path / "no-repo").exists()  # nothing created on the way


def test_read_only_butler_refuses_ingest(repo: str, simulated_dir: Path) -> None:
    with Butler.from_config(repo, writeable=False) as read_only_butler:
        with pytest.raises(PermissionError, match=r"read-only \(writeable=False\)"):
            ingest_simulated(read_only_butler, [str(simulated_dir)])
    with Butler.from_config(repo) as b:
        assert "rawexp" not in {t.name for t in b.registry.queryDatasetTypes()}


@needs_linux
@fork_ok
def test_read_only_repository_is_one_line(repo: str, simulated_dir: Path) -> None:
    restore = read_only(Path(repo))
    try:
        code, out, err = butler_as_ordinary_user("ingest-simulated", repo, str(simulated_dir))
    finally:
        restore()
    assert code == 1, out + err
    assert "Traceback" not in out + err
    lines = error_lines(err)
    assert len(lines) == 1, err
    line = lines[0]
    assert repo in line and ("read-only" in line or "readonly" in line), line
    with Butler.from_config(repo) as b:
        assert "rawexp" not in {t.name for t in b.registry.queryDatasetTypes()}


@needs_linux
@fork_ok
def test_unwritable_datastore_directory_fails_each_exposure_clearly(repo: str, simulated_dir: Path) -> None:
    # The registry is writable, the directory the files go to is not.
    run_dir = Path(repo) / "rawexpr"
    run_dir.mkdir()
    restore = read_only(run_dir)
    try:
        code, out, err = butler_as_ordinary_user("ingest-simulated", repo, str(simulated_dir))
    finally:
        restore()
    assert code == 1
    assert "Traceback" not in out + err
    lines = error_lines(err)
    assert lines and all("Permission denied" in line and str(run_dir) in line for line in lines), lines
    print("\n".join(lines[:2]))
    assert "Ingested 0 rawexp files" in out
    with Butler.from_config(repo) as b:
        assert not b.query_datasets("rawexp", collections="rawexpr", explain=False)
        assert not b.query_dimension_records("exposure", explain=False)
    assert not any(p.is_file() for p in run_dir.rglob("*"))
    shutil.rmtree(run_dir)


@needs_linux
@fork_ok
def test_unreadable_subdirectory_is_named_and_fails_the_run(repo: str, simulated_copy: Path) -> None:
    hidden = simulated_copy / "night2"
    hidden.mkdir()
    for path in simulated_copy.glob("sim_exposure_000002_array_?.fits"):
        path.rename(hidden / path.name)
    hidden.chmod(0)
    try:
        code, out, err = butler_as_ordinary_user("ingest-simulated", repo, str(simulated_copy))
    finally:
        hidden.chmod(0o755)
    assert code == 1
    assert "Traceback" not in out + err
    assert error_lines(err) == [
        f"error: {hidden}: cannot read this directory (Permission denied); its files were not ingested"
    ]
    assert "Ingested 12 rawexp files (2 exposures) into rawexpr; 1 failed." in out


@needs_linux
@fork_ok
@pytest.mark.skipif(
    Path("/proc/sys/fs/protected_hardlinks").read_text().strip() != "1"
    if Path("/proc/sys/fs/protected_hardlinks").exists()
    else True,
    reason="needs fs.protected_hardlinks = 1",
)
def test_move_of_files_that_cannot_be_hard_linked_copies_then_removes(
    repo: str, simulated_dir: Path, simulated_copy: Path
) -> None:
    # Files of another user, readable but not writable: the user may move them (the directory is
    # theirs) but fs.protected_hardlinks refuses a hard link with EPERM.
    sources = sorted(simulated_copy.glob("sim_exposure_*_array_?.fits"))
    for path in sources:
        os.chown(path, 4242, 4242)
        path.chmod(0o644)
    code, out, err = butler_as_ordinary_user(
        "ingest-simulated", "--transfer", "move", repo, str(simulated_copy), also_fowner=True
    )
    assert code == 0, out + err
    assert "Ingested 18 rawexp files (3 exposures) into rawexpr; 0 failed." in out
    assert not any(path.exists() for path in sources)  # removed after commit
    with Butler.from_config(repo) as b:
        refs = b.query_datasets("rawexp", collections="rawexpr", explain=False)
        for ref in refs:
            stored = Path(b.getURI(ref).ospath)
            original = (
                simulated_dir
                / f"sim_exposure_{ref.dataId['exposure']:06d}_array_{ref.dataId['detector']}.fits"
            )
            assert stored.read_bytes() == original.read_bytes()
            assert stored.stat().st_nlink == 1  # a copy, not a link


def test_credentials_file_readable_by_others_is_one_line(
    repo: str, simulated_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PostgreSQL registry whose password comes from DbAuth; daf_butler refuses a file others may read.
    url = "postgresql://spherex@127.0.0.1:1/spherex"
    config = Path(repo) / "butler.yaml"
    config.write_text(config.read_text().replace("sqlite:///<butlerRoot>/spherex.sqlite3", url))
    auth = tmp_path / "db-auth.yaml"
    auth.write_text(f"- url: {url}\n  password: not-a-secret\n")
    auth.chmod(0o644)
    monkeypatch.setenv("LSST_DB_AUTH", str(auth))
    code, out, err = butler("ingest-simulated", repo, str(simulated_dir))
    assert code == 1
    assert "Traceback" not in out + err
    assert error_lines(err) == [
        f"Error: {repo}: DbAuth configuration file {auth} has incorrect permissions: 100644; "
        "make it private with 'chmod 600' (it holds passwords)"
    ]


@pytest.mark.parametrize("command", ["ingest-simulated", "ingest-spherex"])
def test_yaml_error_in_the_repository_config_is_one_line(
    repo: str, simulated_dir: Path, command: str
) -> None:
    config = Path(repo) / "butler.yaml"
    lines = config.read_text().splitlines()
    config.write_text("\n".join([*lines, "  broken: [unclosed", ""]))
    code, out, err = butler(command, repo, str(simulated_dir))
    assert code == 1
    assert "Traceback" not in out + err
    where = f"{config} line {len(lines) + 2}, column 1"
    assert error_lines(err) == [f"Error: {repo}: {where}: not valid YAML (did not find expected ',' or ']')"]


@needs_linux
@fork_ok
def test_hot_journal_in_a_repository_the_user_cannot_write_is_explained(
    repo: str, simulated_dir: Path
) -> None:
    from .test_adversarial_recovery import kill_a_writer

    assert ingest_simulated(repo, [str(simulated_dir)]).ok
    database = Path(repo) / "spherex.sqlite3"
    kill_a_writer(database)
    restore = read_only(Path(repo))
    try:
        code, out, err = butler_as_ordinary_user("query-datasets", repo, "rawexp", "--collections", "rawexpr")
    finally:
        restore()
    assert code != 0
    # query-datasets is daf_butler's command (its CLI prints the traceback); the error itself is one line.
    (line,) = [line for line in err.splitlines() if "HotJournalError:" in line]
    assert (
        f"{database}: a write was interrupted (a process was killed) and its journal {database}-journal"
        in line
    )
    assert "run any command that writes to the repository" in line
    # Once a user who may write opens it, the journal is rolled back and reads work again.
    with Butler.from_config(repo) as b:
        assert len(b.query_datasets("rawexp", collections="rawexpr", explain=False)) == 18
