"""Opening a repository for ingest, and checking the collection names an ingest writes into."""

from __future__ import annotations

__all__ = [
    "RUN_NAME_FORBIDDEN",
    "check_run_name",
    "compile_regex",
    "open_for_ingest",
    "database_problem",
    "repository_errors",
    "yaml_problem",
    "writeable_butler",
]

import contextlib
import os
import re
from collections.abc import Iterator

import sqlalchemy.exc
import yaml
from lsst.daf.butler import Butler, ButlerConfig, DatasetType
from lsst.daf.butler.column_spec import COLLECTION_NAME_MAX_LENGTH
from lsst.daf.butler.registry import RegistryConfig
from lsst.daf.butler.registry.connectionString import ConnectionStringFactory
from lsst.daf.butler.registry.interfaces import ReadOnlyDatabaseError
from lsst.resources import ResourcePath
from lsst.utils.db_auth import DbAuthError, DbAuthPermissionsError

from ...instrument import SimulatorInstrument, SPHERExInstrument

RUN_NAME_FORBIDDEN = frozenset("%\\~$*?[]{},`")
"""Characters refused in a RUN collection name (see `check_run_name`)."""


def check_run_name(run: str, option: str = "--run") -> None:
    r"""Refuse a RUN collection name that could address files outside the datastore root, or be misread.

    The datastore's path template keeps the slashes of run names, and `lsst.resources` decodes
    ``%``-escapes in paths, so a name is a path; it is also a query expression and a shell word.  The
    name is checked before anything is registered.

    Parameters
    ----------
    run : `str`
        Collection name.
    option : `str`, optional
        How the user gave it, for the message.

    Raises
    ------
    ValueError
        Raised if the name is empty or longer than daf_butler's limit (64 characters); starts with
        ``/``; has an empty, ``.`` or ``..`` component; holds a ``%`` (an escape such as ``%2e%2e``
        would be decoded into ``..``), ``\\``, ``~`` or ``$`` (expanded by shells and path tools), a glob
        or query character (``* ? [ ] { } ,``) or a backquote; or holds a character that is not
        printable (control characters such as newline or tab, and format characters such as the
        right-to-left override U+202E, which make a name display as another).
    """
    problem = _run_name_problem(run)
    if problem:
        raise ValueError(f"Invalid {option} {run!r}: {problem}.")


def _run_name_problem(run: str) -> str | None:
    if not run.strip():
        return "a collection name must not be empty"
    if len(run) > COLLECTION_NAME_MAX_LENGTH:
        return f"a collection name has at most {COLLECTION_NAME_MAX_LENGTH} characters (this has {len(run)})"
    hidden = [ch for ch in run if not ch.isprintable()]
    if hidden:
        codes = ", ".join(f"U+{ord(ch):04X}" for ch in dict.fromkeys(hidden))
        return f"it holds characters that are not printable ({codes})"
    if run != run.strip():
        return "it starts or ends with a space"
    bad = sorted(set(run) & RUN_NAME_FORBIDDEN)
    if bad:
        return (
            f"it holds {' '.join(repr(ch) for ch in bad)}; collection names used in file paths and queries "
            "must not contain % \\ ~ $ * ? [ ] { } , or `"
        )
    if run.startswith("/") or any(part in ("", ".", "..") for part in run.split("/")):
        return "a collection name used in file paths must not start with '/' or have empty, '.' or '..' parts"
    return None


def compile_regex(regex: str) -> re.Pattern:
    """Compile the ``--regex`` of an ingest, or refuse it in one line.

    Raises
    ------
    ValueError
        Raised if ``regex`` is not a valid regular expression.
    """
    try:
        return re.compile(regex)
    except re.error as err:
        raise ValueError(f"Invalid --regex {regex!r}: {err}") from None


def open_for_ingest(
    repo: str | Butler,
    instrument: SimulatorInstrument | SPHERExInstrument,
    dataset_type: str,
    dimensions: tuple[str, ...],
    storage_class: str,
    is_calibration: bool = False,
) -> tuple[Butler, DatasetType]:
    """Open a repository for writing; register the instrument and the dataset type to ingest.

    Parameters
    ----------
    repo : `str` or `lsst.daf.butler.Butler`
        Repository, or a writeable Butler on it.
    instrument : `lsst.pipe.base.Instrument`
        Instrument whose files are ingested.
    dataset_type : `str`
        Dataset type name.
    dimensions : `tuple` [`str`, ...]
        Its dimensions.
    storage_class : `str`
        Its storage class.
    is_calibration : `bool`, optional
        Whether it is a calibration.

    Returns
    -------
    butler : `lsst.daf.butler.Butler`
        A writeable Butler.
    dataset_type : `lsst.daf.butler.DatasetType`
        The registered dataset type.

    Raises
    ------
    FileNotFoundError, PermissionError, OSError, ValueError
        As `writeable_butler` and `repository_errors`, each in one line naming the repository.
    """
    with repository_errors(repo):
        butler = writeable_butler(repo)
        instrument.register(butler.registry)
        registered = DatasetType(
            dataset_type, dimensions, storage_class, universe=butler.dimensions, isCalibration=is_calibration
        )
        butler.registry.registerDatasetType(registered)
    return butler, registered


def writeable_butler(repo: str | Butler) -> Butler:
    """Return a writeable Butler for a repository path or URI, or check that a given Butler is.

    Parameters
    ----------
    repo : `str` or `lsst.daf.butler.Butler`
        Repository, or a Butler on it.

    Returns
    -------
    butler : `lsst.daf.butler.Butler`
        A writeable Butler.

    Raises
    ------
    PermissionError
        Raised if ``repo`` is a Butler opened read-only.
    FileNotFoundError
        Raised if there is no repository at ``repo``.
    """
    if isinstance(repo, Butler):
        if not repo.isWriteable():
            raise PermissionError(
                f"{describe_repository(repo)}: the Butler is read-only (writeable=False); "
                "open it with Butler.from_config(repo, writeable=True) to ingest"
            )
        return repo
    root = ResourcePath(repo, forceDirectory=True)
    if root.isLocal:
        if not root.exists():
            raise FileNotFoundError(f"{repo}: no such repository; create it with 'butler create'")
        if not root.join("butler.yaml").exists():
            raise FileNotFoundError(f"{repo}: not a Butler repository (no butler.yaml)")
        _check_sqlite_writeable(repo, root)
    _check_credentials(repo)
    return Butler.from_config(repo, writeable=True)


def _check_credentials(repo: str) -> None:
    """Look up the registry's DbAuth credentials (if it needs any) before daf_butler does.

    daf_butler logs an error of its own when building a Butler fails; a credentials file readable by
    others is refused here first, so that the user reads one line.
    """
    registry = RegistryConfig(ButlerConfig(repo))
    if not str(registry.get("db", "")).startswith("sqlite"):
        ConnectionStringFactory.fromConfig(registry)


def _check_sqlite_writeable(repo: str, root: ResourcePath) -> None:
    """Refuse early, in one line, a local SQLite registry this process cannot write.

    (Otherwise daf_butler logs its own error while opening the repository before ours is raised.)
    """
    db = str(ButlerConfig(repo).get(("registry", "db"), ""))
    if not db.startswith("sqlite:///"):
        return
    path = db.removeprefix("sqlite:///").replace("<butlerRoot>", root.ospath.rstrip("/"))
    for item in (path, os.path.dirname(path)):
        # SQLite writes a journal beside the database: both the file and its directory must be writable.
        if os.path.exists(item) and not os.access(item, os.W_OK):
            raise PermissionError(
                f"{repo}: the repository is read-only for this user ({item} is not writable); "
                "check the permissions of the repository and its database file"
            )


@contextlib.contextmanager
def repository_errors(repo: str | Butler) -> Iterator[None]:
    """Turn the database errors of a repository that cannot be written into one clear `OSError`.

    Parameters
    ----------
    repo : `str` or `lsst.daf.butler.Butler`
        The repository, for the message.

    Raises
    ------
    PermissionError
        Raised if the registry database is read-only, or if the DbAuth credentials file may be read by
        others (daf_butler refuses it).
    OSError
        Raised if it is locked by another process or cannot be opened.
    ValueError
        Raised if a configuration file is not valid YAML, or DbAuth has no usable credentials.
    """
    try:
        yield
    except DbAuthPermissionsError as err:
        raise PermissionError(
            f"{describe_repository(repo)}: {err}; make it private with 'chmod 600' (it holds passwords)"
        ) from None
    except DbAuthError as err:
        raise ValueError(f"{describe_repository(repo)}: database credentials: {err}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{describe_repository(repo)}: {yaml_problem(err)}") from None
    except ReadOnlyDatabaseError as err:
        raise PermissionError(f"{describe_repository(repo)}: the repository is read-only ({err})") from None
    except sqlalchemy.exc.OperationalError as err:
        problem = database_problem(err)
        if "readonly" in problem or "read-only" in problem:
            raise PermissionError(
                f"{describe_repository(repo)}: the registry database is read-only ({problem}); "
                "check the permissions of the repository and its database file"
            ) from None
        raise OSError(f"{describe_repository(repo)}: registry database error: {problem}") from None


def yaml_problem(err: yaml.YAMLError) -> str:
    """Return a YAML error in one line: the file, line and column, and what is wrong there.

    Parameters
    ----------
    err : `yaml.YAMLError`
        What PyYAML raised.

    Returns
    -------
    problem : `str`
        For example ``butler.yaml line 75, column 1: not valid YAML (did not find expected ',' or ']')``.
    """
    mark = getattr(err, "problem_mark", None)
    what = getattr(err, "problem", None) or " ".join(str(err).split())
    if mark is None:
        return f"a configuration file is not valid YAML ({what})"
    name = str(mark.name).removeprefix("file://")
    return f"{name} line {mark.line + 1}, column {mark.column + 1}: not valid YAML ({what})"


def database_problem(err: BaseException) -> str:
    """Return the first line of what the database said, without SQLAlchemy's statement and links.

    Parameters
    ----------
    err : `BaseException`
        An error, possibly a `sqlalchemy.exc.DBAPIError`.

    Returns
    -------
    problem : `str`
        For example ``database is locked (another process is writing; run again when it has finished)``.
    """
    original = getattr(err, "orig", None)
    text = str(original if original is not None else err).strip().splitlines()
    problem = text[0] if text else type(err).__name__
    if "database is locked" in problem:
        problem += " (another process is writing to the repository; run again when it has finished)"
    return problem


def describe_repository(repo: str | Butler) -> str:
    """Return how a repository is named in messages: its path, or its datastore root."""
    if isinstance(repo, Butler):
        roots = [str(root) for root in repo.get_datastore_roots().values() if root is not None]
        return roots[0] if roots else str(repo)
    return str(repo)
