"""``butler`` for BPS jobs, with the zip fix of `spherex.bps.pipetask` (the final job reads the graph too).

    python -m spherex.bps.butler aggregate-graph GRAPH.qg REPO ...

The same command as ``butler``; see `spherex.bps.pipetask` for why.
"""

from __future__ import annotations

__all__ = ["main"]

from .pipetask import patch_zipfile_shared_seek


def main() -> None:
    """Run ``butler`` (its command line is this process's) with the zip fix in place."""
    patch_zipfile_shared_seek()
    from lsst.daf.butler.cli.butler import main as butler_main

    butler_main()


# At import, not only in main(): worker processes that the command spawns (aggregate-graph's scanners,
# ``-j N`` quanta) re-import this module as their ``__main__`` and read the same graph file.
patch_zipfile_shared_seek()

if __name__ == "__main__":
    main()
