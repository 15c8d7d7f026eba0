"""Exceptions raised for invalid SPHEREx images and unreadable SPHEREx FITS files."""

from __future__ import annotations

__all__ = ["FitsLayoutError", "RemoteReadError", "SPHERExImageError"]

import os


class SPHERExImageError(ValueError):
    """An in-memory `~spherex.core.SPHERExImage` is invalid.

    Raised, for example, when the flags, variance or mask plane does not have the shape of the image, when
    a flag bit is outside 0-31, or when a metadata value cannot be written to a FITS header.
    """


class FitsLayoutError(SPHERExImageError, OSError):
    """A file cannot be read (or written) as a SPHEREx image.

    The file is not FITS, is truncated or corrupt, has no ``IMAGE`` HDU, or holds planes of different
    shapes.  The exception is both a `ValueError` (through `SPHERExImageError`) and an `OSError`, like
    `io.UnsupportedOperation`, so that callers catching either see it.

    Parameters
    ----------
    path : `str` or `os.PathLike`
        The file that failed.
    problem : `str`
        What is wrong with it, and if possible what to do.
    """

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        # A single argument keeps OSError from treating the message as (errno, strerror).
        super().__init__(f"{self.path}: {problem}")

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"

    def __reduce__(self) -> tuple:
        # Exceptions cross process boundaries in parallel pipelines; rebuild from (path, problem).
        return (type(self), (self.path, self.problem))


class RemoteReadError(OSError):
    """Bytes of a remote file could not be read, or are not the bytes asked for.

    Raised by `spherex.archive` (after its retries) and passed through unchanged by the FITS readers,
    which would otherwise call the file damaged.

    Parameters
    ----------
    url : `str`
        The file.
    problem : `str`
        What went wrong, and if possible what to do.
    """

    def __init__(self, url: str, problem: str) -> None:
        self.url, self.problem = url, problem
        super().__init__(f"{url}: {problem}")

    def __str__(self) -> str:
        return f"{self.url}: {self.problem}"
