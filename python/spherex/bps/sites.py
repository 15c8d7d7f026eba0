"""A ctrl_bps_parsl site for one machine that starts its workers at once.

ctrl_bps_parsl's own `lsst.ctrl.bps.parsl.sites.Local` runs jobs through Parsl's HighThroughputExecutor:
a worker pool started by a LocalProvider when Parsl's status poller first scales out.  On this 2-core
machine that costs about 10 s of every submission (the poller's 5 s period, then the pool's own start)
before the first job runs, for nothing a single machine needs: every BPS job is a bash command, a child
process of its own.  `LocalThreads` hands them to Parsl's ThreadPoolExecutor instead, one thread per
core, each waiting on its job's process, so the first job starts as soon as Parsl does.  Parsl still
tracks, retries and checkpoints the jobs as before.

Used by ``bps/local-parsl-clustered.yaml``::

    site:
      local:
        class: spherex.bps.sites.LocalThreads
        cores: 2
"""

from __future__ import annotations

__all__ = ["LocalThreads"]

from typing import TYPE_CHECKING

from lsst.ctrl.bps.parsl.configuration import get_bps_config_value
from lsst.ctrl.bps.parsl.site import SiteConfig
from parsl.executors import ThreadPoolExecutor
from parsl.executors.base import ParslExecutor

if TYPE_CHECKING:
    from lsst.ctrl.bps import BpsConfig
    from lsst.ctrl.bps.parsl.job import ParslJob


class LocalThreads(SiteConfig):
    """Run BPS jobs on this machine, ``site.<computeSite>.cores`` at a time, from threads of the
    submitting process.

    Parameters
    ----------
    config : `lsst.ctrl.bps.BpsConfig`
        BPS configuration.
    """

    def __init__(self, config: BpsConfig):
        # A ThreadPoolExecutor takes no resource specification (the HighThroughputExecutor's "priority"
        # has no meaning here: the jobs queue in submission order).
        super().__init__(config, resource_list=[])

    def get_executors(self) -> list[ParslExecutor]:
        """Return one thread pool with a thread per core.

        Returns
        -------
        executors : `list` [`parsl.executors.base.ParslExecutor`]
            The executor, labelled ``local``.
        """
        cores = get_bps_config_value(self.site, "cores", int, required=True)
        return [ThreadPoolExecutor(label="local", max_threads=cores)]

    def select_executor(self, job: ParslJob) -> str:
        """Every job runs on the one executor.

        Parameters
        ----------
        job : `lsst.ctrl.bps.parsl.ParslJob`
            Job to be executed.

        Returns
        -------
        label : `str`
            ``local``.
        """
        return "local"
