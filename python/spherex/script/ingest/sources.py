"""Finding the files an ingest is given, and making sure what is stored is what was checked.

Paths stay `~lsst.resources.ResourcePath` objects from the walk to the transfer: a local path is turned
into a URI once, by quoting it (`local_file_uri`), so that a directory named ``%2E%2E`` is that
directory and not ``..``.  Only regular files are read (a FIFO would block forever, a link to
``/dev/zero`` would never end); a local walk follows directory links only within the location it was
given, never twice into the same directory, and names every directory it cannot read.
"""

from __future__ import annotations

__all__ = [
    "CheckedSources",
    "SourceChangedError",
    "find_files",
    "local_file_uri",
    "location_uri",
    "regular_file_state",
]

import os
import re
import stat
import urllib.parse
from collections.abc import Iterable

from lsst.resources import ResourcePath

from ...archive import allow_anonymous
from ...instrument import FileMetadataError
from .report import IngestReport

_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

_FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


class SourceChangedError(OSError):
    """A source file changed between its check and its transfer into the datastore."""


def local_file_uri(path: str | os.PathLike, directory: bool = False) -> ResourcePath:
    """Return the URI of a local path, taking every character of it literally.

    Parameters
    ----------
    path : `str` or `os.PathLike`
        Local path; made absolute.
    directory : `bool`, optional
        Whether it is a directory.

    Returns
    -------
    uri : `lsst.resources.ResourcePath`
        A ``file`` URI whose ``ospath`` is ``path``: ``%``, ``#`` and ``?`` are quoted, not decoded
        (``ResourcePath("/data/%41")`` would address ``/data/A``).
    """
    absolute = os.path.abspath(os.fspath(path))
    if directory and not absolute.endswith("/"):
        absolute += "/"
    return ResourcePath("file://" + urllib.parse.quote(absolute), forceDirectory=directory)


def location_uri(location: str) -> ResourcePath:
    """Return the URI of a location argument: a URI as given, a local path literally.

    Parameters
    ----------
    location : `str`
        ``s3://bucket/raws/``, ``file:///data/raws`` or a local path such as ``raws%41``.

    Returns
    -------
    uri : `lsst.resources.ResourcePath`
        The location.
    """
    if _URI_SCHEME.match(location):
        # A public bucket (IRSA's s3://nasa-irsa-spherex) is read without credentials.
        return allow_anonymous(ResourcePath(location))
    return local_file_uri(location, directory=os.path.isdir(location))


def regular_file_state(uri: ResourcePath, name: str) -> tuple[int, int, int, int] | None:
    """Check that a local file is a regular file; return what tells whether it changes later.

    Parameters
    ----------
    uri : `lsst.resources.ResourcePath`
        The file.
    name : `str`
        Its name in messages.

    Returns
    -------
    state : `tuple` [`int`, `int`, `int`, `int`] or `None`
        Size, modification time (ns), device and inode of the file (after links); `None` for a remote
        file.

    Raises
    ------
    FileMetadataError
        Raised if the file is not a regular file (FIFO, device, socket, directory) or cannot be read.
    """
    if not uri.isLocal:
        return None
    try:
        st = os.stat(uri.ospath)
    except OSError as err:
        raise FileMetadataError(name, f"cannot read the file ({err.strerror})") from None
    _check_regular(st, name)
    return (st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)


def _check_regular(st: os.stat_result, name: str) -> None:
    if stat.S_ISREG(st.st_mode):
        return
    kind = next((what for test, what in _FILE_KINDS if test(st.st_mode)), "not a regular file")
    raise FileMetadataError(name, f"{kind}, not a regular file; only regular files are ingested")


class CheckedSources:
    """The source files an ingest has checked, by the name its metadata uses, and their state then."""

    def __init__(self) -> None:
        self._uris: dict[str, ResourcePath] = {}
        self._states: dict[str, tuple[int, int, int, int] | None] = {}

    def add(self, uri: ResourcePath, name: str, state: tuple[int, int, int, int] | None) -> None:
        """Remember a checked file."""
        self._uris[name] = uri
        self._states[name] = state

    def uri(self, name: str) -> ResourcePath:
        """Return the `~lsst.resources.ResourcePath` of a checked file (never re-parsed from ``name``)."""
        return self._uris[name]

    def check_unchanged(self, names: Iterable[str]) -> None:
        """Check that files are as they were when checked (size, modification time, inode).

        Raises
        ------
        SourceChangedError
            Raised, naming the first file, if one changed, was replaced or disappeared.
        """
        for name in names:
            before = self._states.get(name)
            if before is None:
                continue
            try:
                st = os.stat(self._uris[name].ospath)
                now = (st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino)
            except OSError as err:
                raise SourceChangedError(
                    f"{name}: disappeared after it was checked ({err.strerror})"
                ) from None
            if now != before:
                what = (
                    f"size {before[0]} -> {now[0]} bytes" if now[0] != before[0] else "modified or replaced"
                )
                raise SourceChangedError(
                    f"{name}: changed after it was checked ({what}); nothing of its exposure was stored, "
                    "run the ingest again once the file is complete"
                )


def find_files(locations: Iterable[str], pattern: re.Pattern, report: IngestReport) -> list[ResourcePath]:
    """Return the files under ``locations`` whose names match ``pattern``.

    Parameters
    ----------
    locations : `~collections.abc.Iterable` [`str`]
        Files and directories (searched recursively); local paths (taken literally) or URIs.
    pattern : `re.Pattern`
        Searched for in each file name.
    report : `IngestReport`
        Receives a line for each location that does not exist, each directory that cannot be read,
        each matching name that is not a regular file, each directory link leading out of its
        location, and each location in which no file name matches.

    Returns
    -------
    files : `list` [`lsst.resources.ResourcePath`]
        The matching regular files, sorted, each once.
    """
    found: dict[str, ResourcePath] = {}
    for location in locations:
        uri = location_uri(location)
        if uri.isLocal:
            files = _walk_local(location, uri.ospath, pattern, report)
        else:
            files = _list_remote(location, uri, pattern, report)
        for file in files:
            found.setdefault(str(file), file)
    return [found[key] for key in sorted(found)]


def _list_remote(
    location: str, uri: ResourcePath, pattern: re.Pattern, report: IngestReport
) -> list[ResourcePath]:
    if uri.isdir():
        # An S3 "directory" is a key prefix: it exists only through the objects under it.
        files = list(ResourcePath.findFileResources([uri]))
        if not files and not uri.exists():
            report.fail(location, "no such file or directory")
            return []
        matching = [u for u in files if pattern.search(u.basename())]
        if not matching:
            _nothing_matched(location, pattern, len(files), report)
        return matching
    # An archive's file (HTTP) is not asked about here: reading its headers, with retries, is what tells
    # whether it is there, and a failure then is that file's alone.
    if uri.scheme not in ("http", "https") and not uri.exists():
        report.fail(location, "no such file or directory")
        return []
    if not pattern.search(uri.basename()):
        report.fail(location, f"file name does not match --regex {pattern.pattern!r}")
        return []
    return [uri]


def _nothing_matched(location: str, pattern: re.Pattern, seen: int, report: IngestReport) -> None:
    report.fail(
        location,
        f"no file name matches --regex {pattern.pattern!r} ({seen} file{'s' * (seen != 1)} looked at); "
        "nothing was ingested from here",
    )


def _walk_local(location: str, top: str, pattern: re.Pattern, report: IngestReport) -> list[ResourcePath]:
    try:
        st = os.stat(top)
    except FileNotFoundError:
        report.fail(location, "no such file or directory")
        return []
    except OSError as err:
        report.fail(location, f"cannot read ({err.strerror})")
        return []
    if not stat.S_ISDIR(st.st_mode):
        if not pattern.search(os.path.basename(top)):
            report.fail(location, f"file name does not match --regex {pattern.pattern!r}")
            return []
        try:
            _check_regular(st, location)
        except FileMetadataError as err:
            report.fail(location, err.problem)
            return []
        return [local_file_uri(top)]

    root = os.path.realpath(top)
    visited = {(st.st_dev, st.st_ino)}
    pending = [top]
    matching: list[ResourcePath] = []
    seen = 0
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as entries:
                listed = sorted(entries, key=lambda e: e.name)
        except OSError as err:
            report.fail(
                directory, f"cannot read this directory ({err.strerror}); its files were not ingested"
            )
            continue
        for entry in listed:
            path = entry.path
            try:
                if entry.is_dir(follow_symlinks=False):
                    target = entry.stat(follow_symlinks=False)
                    if (target.st_dev, target.st_ino) not in visited:
                        visited.add((target.st_dev, target.st_ino))
                        pending.append(path)
                    continue
                target = entry.stat(follow_symlinks=True)
            except OSError as err:
                if pattern.search(entry.name):
                    report.fail(path, f"cannot read ({err.strerror}; a broken link?)")
                continue
            if stat.S_ISDIR(target.st_mode):
                _follow_directory_link(location, root, path, target, visited, pending, report)
                continue
            seen += 1
            if not pattern.search(entry.name):
                continue
            try:
                _check_regular(target, path)
            except FileMetadataError as err:
                report.fail(path, err.problem)
                continue
            matching.append(local_file_uri(path))
    if not matching:
        _nothing_matched(location, pattern, seen, report)
    return matching


def _follow_directory_link(
    location: str,
    root: str,
    path: str,
    target: os.stat_result,
    visited: set[tuple[int, int]],
    pending: list[str],
    report: IngestReport,
) -> None:
    """Follow a link to a directory if it stays inside the location and leads somewhere new."""
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root:
        report.fail(
            path,
            f"link to a directory outside {location} ({real}); not followed: give that directory as a "
            "location of its own to ingest it",
        )
        return
    key = (target.st_dev, target.st_ino)
    if key not in visited:  # a loop (up -> ..) or a second way into the same directory
        visited.add(key)
        pending.append(path)
