"""Storage class delegate of `spherex.core.SPHERExImage`: components and the ``slices`` parameter."""

from __future__ import annotations

__all__ = ["SPHERExImageDelegate"]

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.nddata import VarianceUncertainty
from lsst.daf.butler import DatasetComponent, StorageClassDelegate

from ..core import (
    FLAG_KEYWORD_PREFIX,
    SPHERExImage,
    SPHERExImageError,
    flag_defs_to_cards,
    metadata_to_header,
    read_flag_defs,
)

# Carried in the ``metadata`` component of a disassembled image so that assembly restores them.
_UNIT_KEYWORD = "BUNIT"


class SPHERExImageDelegate(StorageClassDelegate):
    """Split a `~spherex.core.SPHERExImage` into components and apply read parameters in memory.

    Components: ``image`` (data array), ``variance`` (variance array, whatever uncertainty type the
    image holds), ``flags``, ``mask``, ``wcs`` and ``metadata`` (``meta`` as an `astropy.io.fits.Header`).
    When a datastore disassembles an image, the ``metadata`` component also carries ``BUNIT`` and the
    ``MP_<NAME>`` flag definitions, which `assemble` moves back into the unit and flag definitions.

    Parameters
    ----------
    storageClass : `lsst.daf.butler.StorageClass`
        The ``SPHERExImage`` storage class.
    """

    image_class: type[SPHERExImage] = SPHERExImage
    """Images this delegate accepts; subclasses for richer images replace it."""

    def can_accept(self, inMemoryDataset: Any) -> bool:
        """Tell whether an object can be stored without conversion.

        Parameters
        ----------
        inMemoryDataset : `typing.Any`
            Object to store.

        Returns
        -------
        accepts : `bool`
            `True` for `~spherex.core.SPHERExImage` instances.
        """
        return isinstance(inMemoryDataset, self.image_class)

    def getComponent(self, composite: Any, componentName: str) -> Any:
        """Return one component of an image.

        Parameters
        ----------
        composite : `~spherex.core.SPHERExImage`
            The image.
        componentName : `str`
            ``image``, ``variance``, ``flags``, ``mask``, ``wcs`` or ``metadata``.

        Returns
        -------
        component : `typing.Any`
            The component; `None` for a plane the image does not have.

        Raises
        ------
        AttributeError
            Raised if ``componentName`` is not a component of the storage class.
        """
        match componentName:
            case "image":
                return np.asarray(composite.data)
            case "variance":
                if composite.uncertainty is None:
                    return None
                return np.asarray(composite.uncertainty.represent_as(VarianceUncertainty).array)
            case "flags":
                return composite.flags
            case "mask":
                return None if composite.mask is None else np.asarray(composite.mask)
            case "wcs":
                return composite.wcs
            case "metadata":
                return metadata_to_header(composite.meta)
        raise AttributeError(f"SPHERExImage has no component {componentName!r}")

    def disassemble(
        self, composite: Any, subset: Iterable | None = None, override: Any | None = None
    ) -> dict[str, DatasetComponent]:
        """Split an image into its components.

        Parameters
        ----------
        composite : `~spherex.core.SPHERExImage`
            The image.
        subset : `~collections.abc.Iterable` [`str`], optional
            Components to return; all by default.
        override : `typing.Any`, optional
            Object to disassemble instead of ``composite``.

        Returns
        -------
        components : `dict` [`str`, `lsst.daf.butler.DatasetComponent`]
            Components present in the image; ``metadata`` also carries ``BUNIT`` and the ``MP_<NAME>``
            flag definitions so that `assemble` restores them.
        """
        components = super().disassemble(composite, subset=subset, override=override)
        image = override if override is not None else composite
        if "metadata" in components or subset is None:
            header = metadata_to_header(image.meta)
            header[_UNIT_KEYWORD] = image.unit.to_string()
            header.extend(flag_defs_to_cards(image.flag_defs))
            components["metadata"] = DatasetComponent(
                "metadata", self.storageClass.components["metadata"], header
            )
        return components

    def assemble(self, components: dict[str, Any], pytype: type | None = None) -> Any:
        """Build an image from its components.

        Parameters
        ----------
        components : `dict` [`str`, `typing.Any`]
            Components by name; ``image`` is required.
        pytype : `type`, optional
            Class to build, a `~spherex.core.SPHERExImage` subclass.

        Returns
        -------
        image : `~spherex.core.SPHERExImage`
            The image.

        Raises
        ------
        ValueError
            Raised if components are unknown or ``image`` is missing.
        """
        unknown = set(components) - set(self.storageClass.components)
        if unknown:
            raise ValueError(f"Components {sorted(unknown)} are not components of SPHERExImage")
        if components.get("image") is None:
            raise ValueError("A SPHERExImage can not be assembled without its 'image' component")
        cls = pytype if pytype is not None else self.storageClass.pytype
        metadata = components.get("metadata")
        unit = None
        flag_defs: dict[str, int] = {}
        meta = None
        if metadata is not None:
            meta = fits.Header()
            for card in metadata.cards:
                if card.keyword == _UNIT_KEYWORD:
                    unit = card.value
                elif not card.keyword.startswith(FLAG_KEYWORD_PREFIX):
                    meta.append(card, end=True)
            flag_defs = read_flag_defs(metadata)
        variance = components.get("variance")
        return cls(
            components["image"],
            unit=unit,
            uncertainty=None if variance is None else VarianceUncertainty(variance),
            flags=components.get("flags"),
            flag_defs=flag_defs,
            mask=components.get("mask"),
            wcs=components.get("wcs"),
            meta=meta,
            **self._assembly_arguments(components),
        )

    def _assembly_arguments(self, components: Mapping[str, Any]) -> dict[str, Any]:
        """Return further constructor arguments from components of subclasses' storage classes."""
        return {}

    def handleParameters(self, inMemoryDataset: Any, parameters: Mapping[str, Any] | None = None) -> Any:
        """Apply the ``slices`` parameter to an image in memory.

        Parameters
        ----------
        inMemoryDataset : `~spherex.core.SPHERExImage`
            The image.
        parameters : `~collections.abc.Mapping`, optional
            ``slices``: a tuple of Python slices in numpy (row, column) order; ``boxes``: a list of
            such tuples (a list of cutouts is returned).

        Returns
        -------
        image : `~spherex.core.SPHERExImage`
            The cutout (every plane and the WCS sliced), or the image itself without parameters.

        Raises
        ------
        SPHERExImageError
            Raised if ``slices`` is not a tuple of slices.
        """
        if not parameters:
            return inMemoryDataset
        unknown = set(parameters) - {"slices", "boxes"}
        if unknown:
            raise ValueError(f"Unknown SPHERExImage read parameters {sorted(unknown)}")
        if parameters.get("boxes") is not None:
            return [inMemoryDataset[_as_slices(box)] for box in parameters["boxes"]]
        slices = parameters.get("slices")
        if slices is None:
            return inMemoryDataset
        return inMemoryDataset[_as_slices(slices)]


def _as_slices(slices: Any) -> tuple[slice, ...]:
    if isinstance(slices, slice):
        slices = (slices,)
    if not isinstance(slices, tuple) or not all(isinstance(s, slice) for s in slices):
        raise SPHERExImageError(f"'slices' must be a tuple of Python slices, not {slices!r}")
    return slices
