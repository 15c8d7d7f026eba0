"""Storage class delegate of `spherex.core.SPHERExLevel2Image`: the Level-2 components."""

from __future__ import annotations

__all__ = ["SPHERExLevel2ImageDelegate"]

from typing import Any

import numpy as np

from ..core import SPHERExLevel2Image
from .spherex_image_delegate import SPHERExImageDelegate


class SPHERExLevel2ImageDelegate(SPHERExImageDelegate):
    """Components of a `~spherex.core.SPHERExLevel2Image` in memory.

    Adds ``zodi``, ``psf`` and ``wavelength`` to the components of `SPHERExImageDelegate`.
    ``wavelength`` is derived (computed from the ``WCS-WAVE`` table), so assembly ignores it.

    Parameters
    ----------
    storageClass : `lsst.daf.butler.StorageClass`
        The ``SPHERExLevel2Image`` storage class.
    """

    def can_accept(self, inMemoryDataset: Any) -> bool:
        """Tell whether an object can be stored without conversion.

        Parameters
        ----------
        inMemoryDataset : `typing.Any`
            Object to store.

        Returns
        -------
        accepts : `bool`
            `True` for `~spherex.core.SPHERExLevel2Image` instances.
        """
        return isinstance(inMemoryDataset, SPHERExLevel2Image)

    def getComponent(self, composite: Any, componentName: str) -> Any:
        """Return one component of a Level-2 image.

        Parameters
        ----------
        composite : `~spherex.core.SPHERExLevel2Image`
            The image.
        componentName : `str`
            A component of `SPHERExImageDelegate`, or ``zodi``, ``psf`` or ``wavelength``.

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
            case "zodi":
                return None if composite.zodi is None else np.asarray(composite.zodi)
            case "psf":
                return composite.psf_model
            case "wavelength":
                return None if composite.spectral_lookup is None else composite.wavelength_maps()
        return super().getComponent(composite, componentName)

    def assemble(self, components: dict[str, Any], pytype: type | None = None) -> Any:
        """Build a Level-2 image from its components.

        Parameters
        ----------
        components : `dict` [`str`, `typing.Any`]
            Components by name; ``image`` is required, ``wavelength`` is ignored.
        pytype : `type`, optional
            Class to build.

        Returns
        -------
        image : `~spherex.core.SPHERExLevel2Image`
            The image (without a wavelength table: it is not a stored component).
        """
        components = dict(components)
        zodi = components.pop("zodi", None)
        psf_model = components.pop("psf", None)
        components.pop("wavelength", None)
        image = super().assemble(components, pytype=pytype)
        return SPHERExLevel2Image(image, zodi=zodi, psf_model=psf_model)
