"""Storage class delegate of `spherex.core.SPHERExLevel2Image`: the Level-2 components."""

from __future__ import annotations

__all__ = ["SPHERExLevel2ImageDelegate"]

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core import SPHERExLevel2Image
from .spherex_image_delegate import SPHERExImageDelegate


class SPHERExLevel2ImageDelegate(SPHERExImageDelegate):
    """The components of `SPHERExImageDelegate`, and ``zodi``, ``psf`` and ``wavelength``.

    ``wavelength`` is derived (computed from the ``WCS-WAVE`` table), so assembly ignores it.

    Parameters
    ----------
    storageClass : `lsst.daf.butler.StorageClass`
        The ``SPHERExLevel2Image`` storage class.
    """

    image_class = SPHERExLevel2Image

    def getComponent(self, composite: Any, componentName: str) -> Any:
        """Return ``zodi`` (array), ``psf`` (`~spherex.core.Level2PSF`), ``wavelength`` (maps) or a component
        of `SPHERExImageDelegate`; `None` for a plane the image does not have.
        """
        match componentName:
            case "zodi":
                return None if composite.zodi is None else np.asarray(composite.zodi)
            case "psf":
                return composite.psf_model
            case "wavelength":
                return None if composite.spectral_lookup is None else composite.wavelength_maps()
        return super().getComponent(composite, componentName)

    def _assembly_arguments(self, components: Mapping[str, Any]) -> dict[str, Any]:
        # The wavelength maps cannot rebuild the WCS-WAVE table they were computed from: not assembled.
        return {"zodi": components.get("zodi"), "psf_model": components.get("psf")}
