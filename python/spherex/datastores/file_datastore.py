"""A `~lsst.daf.butler.datastores.fileDatastore.FileDatastore` with defaults for the SPHEREx universe."""

from __future__ import annotations

__all__ = ["SPHEREX_DEFAULTS", "RootConfinedLocationFactory", "SPHERExFileDatastore", "with_spherex_defaults"]

import logging
import os
import posixpath
import urllib.parse
from collections.abc import Collection
from typing import ClassVar

from lsst.daf.butler import Config, DatasetRef, Location, LocationFactory
from lsst.daf.butler.datastore import Datastore, DatastoreConfig
from lsst.daf.butler.datastores.fileDatastore import FileDatastore
from lsst.daf.butler.registry.interfaces import DatastoreRegistryBridgeManager
from lsst.resources import ResourcePath, ResourcePathExpression

_LOG = logging.getLogger(__name__)

SPHEREX_DEFAULTS = "resource://spherex/configs/fileDatastore.yaml"
"""SPHEREx's defaults: daf_butler's, less its templates for dimensions SPHEREx does not have."""

_STOCK_DEFAULTS = "resource://lsst.daf.butler/configs/datastores/fileDatastore.yaml"


def with_spherex_defaults(config: Config) -> Config:
    """Return a datastore configuration with SPHEREx's defaults where it still holds daf_butler's.

    daf_butler merges a datastore's configuration from its packaged ``datastores/fileDatastore.yaml``,
    then the files of that name on the configuration search path (``$DAF_BUTLER_CONFIG_PATH``, a
    Butler's ``searchPaths``), then the repository's ``butler.yaml``.  Every value that came through
    unchanged from the packaged file is replaced by SPHEREx's (`SPHEREX_DEFAULTS`), and the packaged
    keys SPHEREx does not have (the ``physical_filter+detector+exposure`` template) are dropped; what a
    site or the repository set is kept.

    Parameters
    ----------
    config : `lsst.daf.butler.Config`
        The merged datastore configuration (the ``datastore`` section).

    Returns
    -------
    config : `lsst.daf.butler.Config`
        A new configuration.
    """
    stock = DatastoreConfig(_STOCK_DEFAULTS, mergeDefaults=False)
    ours = DatastoreConfig(SPHEREX_DEFAULTS, mergeDefaults=False)
    result = Config(config)
    for name in _leaf_names(stock):
        if name in result and result[name] == stock[name]:
            if name in ours:
                result[name] = ours[name]
            else:
                del result[name]
    for name in _leaf_names(ours):
        if name not in result:
            result[name] = ours[name]
    return result


def _leaf_names(config: Config) -> list[tuple[str, ...]]:
    """Return the hierarchical keys of a configuration's values (not of its sections)."""
    names = []
    for name in config.names(topLevelOnly=False):
        key = tuple(name.split(name[0])[1:]) if name and not name[0].isalnum() else tuple(name.split("."))
        if not isinstance(config[key], Config):
            names.append(key)
    return names


class RootConfinedLocationFactory(LocationFactory):
    """A `~lsst.daf.butler.LocationFactory` that refuses any location outside the datastore root.

    daf_butler builds the location of a new file from the path template with ``trusted_path=True``,
    which skips its own check; a run name such as ``x%2e%2e/%2e%2e/%2e%2e/pwned`` (from
    ``pipetask run -o``) formats to a path that `lsst.resources` later decodes into ``../..``.  Every
    location made here is checked with its ``%``-escapes decoded, trusted or not.
    """

    def from_uri(self, uri: ResourcePath, *, trusted_path: bool = False) -> Location:
        """Return the location of ``uri`` in the datastore, refusing one outside the root.

        Raises
        ------
        ValueError
            Raised if the path, decoded, is absolute or has a ``..`` component.
        """
        location = super().from_uri(uri, trusted_path=trusted_path)
        in_store = location.pathInStore.path
        decoded = urllib.parse.unquote(urllib.parse.unquote(in_store))
        parts = decoded.split("/")
        if decoded.startswith("/") or ".." in parts or posixpath.normpath(decoded).startswith(".."):
            raise ValueError(
                f"Refusing to write {urllib.parse.unquote(in_store)!r} outside the datastore root "
                f"{self._datastoreRootUri}: a run name or data ID value in its path template decodes to '..' "
                "(use a collection name without '%' or '..')"
            )
        return location


class SPHERExFileDatastore(FileDatastore):
    """File datastore whose default configuration fits the SPHEREx dimension universe.

    daf_butler's default file-datastore configuration carries a path template keyed on
    ``physical_filter+detector+exposure``.  Config merging can add keys but never remove them, and in a
    universe without ``physical_filter`` that key is read as a dataset type name, which makes
    ``butler config-validate`` fail.  This class swaps the defaults file for one with the same
    formatters, composites and cache settings but SPHEREx's own templates, confines every file it
    writes to its root (`RootConfinedLocationFactory`), and removes the directories that purging a run
    leaves empty (`emptyTrash`); everything else is `FileDatastore`'s.

    daf_butler builds the datastore with ``FileDatastore(...)`` in ``_create_from_config`` and `clone`
    (the class is written out there, not ``cls``); both are wrapped here so that a repository configured
    with this class really gets an instance of it.
    """

    defaultConfigFile: ClassVar[str | None] = "datastores/fileDatastore.yaml"
    """As `FileDatastore`'s: found on daf_butler's configuration search path, so that a site's override
    (``$DAF_BUTLER_CONFIG_PATH/datastores/fileDatastore.yaml``) applies; SPHEREx's own defaults then take
    the place of daf_butler's packaged ones (`with_spherex_defaults`)."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.locationFactory = RootConfinedLocationFactory(self.root)

    @classmethod
    def _create_from_config(
        cls,
        config,  # type: ignore[no-untyped-def]
        bridgeManager: DatastoreRegistryBridgeManager,
        butlerRoot: ResourcePathExpression | None,
    ) -> FileDatastore:
        # FileDatastore._create_from_config constructs a plain FileDatastore (and creates the root).
        config = DatastoreConfig(with_spherex_defaults(config), mergeDefaults=False)
        plain = super()._create_from_config(config, bridgeManager, butlerRoot)
        return cls._from(plain, bridgeManager)

    def clone(self, bridgeManager: DatastoreRegistryBridgeManager) -> Datastore:
        """Return a copy of this datastore on another bridge manager (of this class, not the base)."""
        return self._from(self, bridgeManager)

    @classmethod
    def _from(
        cls, datastore: FileDatastore, bridgeManager: DatastoreRegistryBridgeManager
    ) -> SPHERExFileDatastore:
        return cls(
            datastore.config,
            bridgeManager,
            datastore.root,
            datastore.formatterFactory,
            datastore.templates,
            datastore.composites,
            datastore.trustGetRequest,
        )

    def emptyTrash(
        self, ignore_errors: bool = True, refs: Collection[DatasetRef] | None = None, dry_run: bool = False
    ) -> set[ResourcePath]:
        """Remove the trashed datasets' files, then the directories that leaves empty.

        ``pipetask run --replace-run --prune-replaced=purge`` and ``butler remove-runs`` end here; without
        the second part the purged run's directory tree stays on disk, empty.

        Parameters
        ----------
        ignore_errors : `bool`, optional
            If `True` return without error even if something went wrong.
        refs : `~collections.abc.Collection` [ `~lsst.daf.butler.DatasetRef` ] or `None`, optional
            Datasets that may be removed from the trash; `None` for all of it.
        dry_run : `bool`, optional
            Report what would be removed; remove nothing.

        Returns
        -------
        removed : `set` [ `lsst.resources.ResourcePath` ]
            The file artifacts removed.
        """
        removed = super().emptyTrash(ignore_errors=ignore_errors, refs=refs, dry_run=dry_run)
        if not dry_run:
            self._remove_empty_directories(removed)
        return removed

    def _remove_empty_directories(self, removed: Collection[ResourcePath]) -> None:
        """Remove the now-empty directories above ``removed``, up to (not including) the root.

        Only local directories strictly inside the datastore root are touched, and only with
        `os.rmdir`, which refuses a directory that is not empty (another process may be writing into it).
        """
        if not self.root.isLocal:
            return  # object stores have no directories to leave behind
        root = os.path.realpath(self.root.ospath)
        candidates = {os.path.dirname(uri.ospath) for uri in removed if uri.isLocal}
        # Deepest first, so that a parent is tried only after its children.
        for directory in sorted(candidates, key=lambda d: d.count(os.sep), reverse=True):
            current = os.path.realpath(directory)
            while os.path.commonpath([root, current]) == root and current != root:
                try:
                    os.rmdir(current)
                except OSError:
                    break  # not empty, already gone, or not ours to remove
                _LOG.debug("Removed empty directory %s", current)
                current = os.path.dirname(current)
