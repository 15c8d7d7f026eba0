"""``pipetask`` for BPS jobs, with CPython's fix for interleaved reads of uncompressed zip members.

    python -m spherex.bps.pipetask run-qbb REPO GRAPH.qg --qgraph-node-id ID,ID,...

The same command as ``pipetask``.  A quantum graph file is a zip archive whose blocks are stored
uncompressed; ``pipetask run-qbb --qgraph-node-id`` reads the blocks of the quanta it is given while
its address table, another member of the same archive, is open too.  CPython 3.12 and 3.13 before the
fix (3.12.1 on this project's machine) seek such a member relative to the archive's *shared* file
position (which the other member's reads have moved), so that a job given quanta from the middle of
the graph fails with ``EOFError`` or reads the wrong bytes
(https://github.com/python/cpython/issues/127847, fixed by python/cpython#127856).
Clustered BPS jobs (``bps/local-parsl-clustered.yaml``) hit it on every graph of more than a few
dozen quanta.  This entry point makes `zipfile`'s shared-file seek honour the member's own position
before handing over to ``pipetask``; on a Python with the fix it changes nothing.
"""

from __future__ import annotations

__all__ = ["main", "patch_zipfile_shared_seek"]

import os
import zipfile


def patch_zipfile_shared_seek() -> None:
    """Make relative seeks of `zipfile`'s shared file start from the reader's own position.

    Each open member of a `zipfile.ZipFile` reads through a ``_SharedFile`` that remembers its own
    position; an ``os.SEEK_CUR`` seek must be relative to that, not to wherever another member left the
    underlying file.  Absolute seeks are unchanged.
    """
    shared = zipfile._SharedFile  # noqa: SLF001 - the class the CPython fix changes behaviour of
    if getattr(shared.seek, "_spherex_fixed", False):
        return
    original = shared.seek

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            offset, whence = self._pos + offset, os.SEEK_SET
        return original(self, offset, whence)

    seek._spherex_fixed = True  # type: ignore[attr-defined]
    shared.seek = seek


def main() -> None:
    """Run ``pipetask`` (its command line is this process's) with the zip fix in place, reading the
    repository's configuration once per process (`spherex.bps.qbb`).
    """
    patch_zipfile_shared_seek()
    from .qbb import reuse_butler_config

    reuse_butler_config()
    from lsst.ctrl.mpexec.cli.pipetask import main as pipetask_main

    pipetask_main()


# At import, not only in main(): worker processes that the command spawns (aggregate-graph's scanners,
# ``-j N`` quanta) re-import this module as their ``__main__`` and read the same graph file.
patch_zipfile_shared_seek()

if __name__ == "__main__":
    main()
