"""How source files go into the datastore, and when a moved source is removed."""

from __future__ import annotations

__all__ = ["SourceTransfer"]

import errno
import filecmp
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lsst.daf.butler import Butler, DatasetRef
from lsst.resources import ResourcePath

_LOG = logging.getLogger(__name__)

# What os.link raises where a move cannot be a hard link: fs.protected_hardlinks (EPERM) for a file the
# user may move but does not own, another file system (EXDEV), too many links (EMLINK).
_NO_HARDLINK = (errno.EPERM, errno.EACCES, errno.EXDEV, errno.EMLINK)


@dataclass(frozen=True)
class SourceTransfer:
    """How files go into the datastore, and whether their sources are removed after commit."""

    mode: str | None
    """Transfer mode handed to `Butler.ingest`."""
    remove_sources: bool
    """Remove each source once its dataset is committed (``--transfer move``)."""

    @classmethod
    def choose(
        cls, butler: Butler, transfer: str | None | SourceTransfer, sources: Sequence[ResourcePath]
    ) -> SourceTransfer:
        """Return how to transfer ``sources`` for the transfer mode the user asked for.

        daf_butler's ``move`` renames the file into the datastore inside the transaction: a process
        killed before the commit would leave it there, unregistered, and gone from where it was.  A move
        is therefore a hard link (same file system) or a copy, and the sources are removed only after
        the registry has committed.
        """
        if isinstance(transfer, SourceTransfer):
            return transfer
        if transfer != "move":
            return cls(transfer, False)
        roots = [root for root in butler.get_datastore_roots().values() if root is not None]
        mode = "copy"
        try:
            if sources and roots and all(uri.isLocal for uri in [*roots, *sources]):
                devices = {os.stat(root.ospath).st_dev for root in roots}
                devices |= {os.stat(uri.ospath).st_dev for uri in sources}
                mode = "hardlink" if len(devices) == 1 else "copy"
        except OSError:
            mode = "copy"
        return cls(mode, True)

    def copy_instead(self, err: BaseException) -> SourceTransfer | None:
        """Return the transfer to retry with after ``err``, if a move's hard link was refused.

        A user may move a file they cannot hard-link (``fs.protected_hardlinks`` refuses links to files
        the user does not own with ``EPERM``); such a move is a copy, whose source is still removed only
        after commit.
        """
        if not self.remove_sources or self.mode != "hardlink":
            return None
        cause: BaseException | None = err
        while cause is not None:
            if isinstance(cause, OSError) and cause.errno in _NO_HARDLINK:
                return SourceTransfer("copy", True)
            cause = cause.__cause__ or cause.__context__
        return None

    def remove_committed(self, sources: Iterable[tuple[str, ResourcePath]]) -> None:
        """Remove the sources of committed datasets (a failure to remove loses nothing and is logged)."""
        if not self.remove_sources:
            return
        for name, uri in sources:
            try:
                uri.remove()
            except Exception as err:
                _LOG.warning("%s: ingested, but the source could not be removed (%s)", name, err)

    def remove_if_stored(self, butler: Butler, name: str, source: ResourcePath, ref: DatasetRef) -> None:
        """Finish an interrupted move: remove a source whose dataset is stored with the same bytes."""
        if not self.remove_sources:
            return
        try:
            stored = butler.getURI(ref)
            if source.isLocal and stored.isLocal:
                same = os.path.samefile(source.ospath, stored.ospath) or filecmp.cmp(
                    source.ospath, stored.ospath, shallow=False
                )
            else:
                same = source.read() == stored.read()
        except Exception as err:
            _LOG.warning(
                "%s: already ingested; source kept, cannot compare it with the stored file (%s)", name, err
            )
            return
        if same:
            self.remove_committed([(name, source)])
        else:
            _LOG.warning("%s: already ingested from different bytes; source kept", name)
