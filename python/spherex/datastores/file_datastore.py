"""A `~lsst.daf.butler.datastores.fileDatastore.FileDatastore` with defaults for the SPHEREx universe."""

from __future__ import annotations

__all__ = ["RootConfinedLocationFactory", "SPHERExFileDatastore"]

import posixpath
import urllib.parse
from typing import ClassVar

from lsst.daf.butler import Location, LocationFactory
from lsst.daf.butler.datastore import Datastore
from lsst.daf.butler.datastores.fileDatastore import FileDatastore
from lsst.daf.butler.registry.interfaces import DatastoreRegistryBridgeManager
from lsst.resources import ResourcePath, ResourcePathExpression


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
    formatters, composites and cache settings but SPHEREx's own templates, and confines every file it
    writes to its root (`RootConfinedLocationFactory`); otherwise its behaviour is `FileDatastore`'s.
    """

    defaultConfigFile: ClassVar[str | None] = "resource://spherex/configs/fileDatastore.yaml"

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
