"""What an ingest did, file by file: the report both ingest commands print."""

from __future__ import annotations

__all__ = ["FailedFile", "IngestReport", "display_name"]

from dataclasses import dataclass, field

from lsst.resources import ResourcePath


def display_name(uri: ResourcePath) -> str:
    """Return how a file is named in messages: its local path, or its URI.

    Parameters
    ----------
    uri : `lsst.resources.ResourcePath`
        The file.

    Returns
    -------
    name : `str`
        ``uri.ospath`` for a local file (unquoted, as the user typed it), else the URI.
    """
    return uri.ospath if uri.isLocal else uri.geturl()


@dataclass(frozen=True)
class FailedFile:
    """A file (or location) that was not ingested, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        # One line: some reasons quote multi-line messages (wcslib's, for instance), and a hostile file
        # name may hold control characters; repr-escape those so the line cannot be forged.
        path = self.path if self.path.isprintable() else repr(self.path)
        return f"{path}: {' '.join(self.reason.split())}"


@dataclass
class IngestReport:
    """What one ingest call did."""

    dataset_type: str
    run: str
    ingested: list[str] = field(default_factory=list)
    """Files whose datasets landed in this call."""
    already_present: list[str] = field(default_factory=list)
    """Files whose datasets were already in the repository (nothing was added for them)."""
    exposures: set[int] = field(default_factory=set)
    """Exposures (raws) or dark epochs whose datasets landed in this call."""
    failed: list[FailedFile] = field(default_factory=list)
    """Files that did not land, each with its reason; also locations that could not be read in full,
    and locations in which no file matched."""

    @property
    def ok(self) -> bool:
        """`True` if no file failed."""
        return not self.failed

    def fail(self, path: str, reason: str) -> None:
        """Record that ``path`` failed for ``reason``."""
        self.failed.append(FailedFile(path, reason))

    def summary(self) -> str:
        """One line a person can read."""
        unit = "dark epochs" if self.dataset_type == "dark" else "exposures"
        line = (
            f"Ingested {len(self.ingested)} {self.dataset_type} files ({len(self.exposures)} {unit}) "
            f"into {self.run}"
        )
        if self.already_present:
            line += f"; {len(self.already_present)} already present, nothing added for them"
        line += f"; {len(self.failed)} failed."
        return line
