"""A `~lsst.daf.butler.datastores.fileDatastore.FileDatastore` with defaults for the SPHEREx universe."""

from __future__ import annotations

__all__ = ["SPHERExFileDatastore"]

from typing import ClassVar

from lsst.daf.butler.datastores.fileDatastore import FileDatastore


class SPHERExFileDatastore(FileDatastore):
    """File datastore whose default configuration fits the SPHEREx dimension universe.

    daf_butler's default file-datastore configuration carries a path template keyed on
    ``physical_filter+detector+exposure``.  Config merging can add keys but never remove them, and in a
    universe without ``physical_filter`` that key is read as a dataset type name, which makes
    ``butler config-validate`` fail.  This class only swaps the defaults file for one with the same
    formatters, composites and cache settings but SPHEREx's own templates; its behaviour is
    `FileDatastore`'s.  (daf_butler builds the datastore with ``FileDatastore(...)`` from the merged
    configuration, so a repository's datastore object is a plain `FileDatastore`: the defaults file is
    all this class contributes, and no behaviour can be added here.)
    """

    defaultConfigFile: ClassVar[str | None] = "resource://spherex/configs/fileDatastore.yaml"
