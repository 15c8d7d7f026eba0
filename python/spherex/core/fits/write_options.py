"""Options for writing FITS files: tile compression and checksums, settable as Butler write parameters."""

from __future__ import annotations

__all__ = ["COMPRESSION_TYPES", "FitsWriteOptions"]

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

import numpy as np
from astropy.io import fits
from astropy.io.fits.hdu.compressed import DITHER_SEED_CHECKSUM

from ..errors import SPHERExImageError

COMPRESSION_TYPES = frozenset({"RICE_1", "GZIP_1", "GZIP_2", "PLIO_1", "HCOMPRESS_1", "NOCOMPRESS"})
"""Tile-compression algorithms of astropy.io.fits (CFITSIO)."""

# Only GZIP (and no compression) can store floating point pixels without quantizing them.
_LOSSLESS_FLOAT_COMPRESSION = frozenset({"GZIP_1", "GZIP_2", "NOCOMPRESS"})


@dataclass(frozen=True)
class FitsWriteOptions:
    """How to write the HDUs of a FITS file.

    Formatters accept the fields as write parameters (``compression: RICE_1`` under ``parameters:`` of
    the datastore formatter configuration), and a ``recipe`` parameter naming a set of them in the
    formatter's ``write_recipes`` configuration; explicit parameters override the recipe.

    Parameters
    ----------
    compression : `str`, optional
        Tile-compression algorithm for image extensions (one of `COMPRESSION_TYPES`); `None` writes plain
        image HDUs.  Integer planes are always compressed losslessly.
    quantize_level : `float`, optional
        Quantization of floating point pixels when compressing (see `astropy.io.fits.CompImageHDU`).  By
        default GZIP stores floats losslessly (no quantization), while ``RICE_1`` and ``HCOMPRESS_1``,
        which compress only quantized floats, use astropy's default of 16 (lossy, as fpack does), with
        dithering seeded from the data so that output is reproducible.
    checksum : `bool`, optional
        Write ``CHECKSUM`` and ``DATASUM`` keywords in every HDU.

    Raises
    ------
    SPHERExImageError
        Raised if ``compression`` is not a known algorithm or ``quantize_level`` is not a number.
    """

    compression: str | None = None
    quantize_level: float | None = None
    checksum: bool = False

    write_parameters: ClassVar[frozenset[str]] = frozenset(
        {"recipe", "compression", "quantize_level", "checksum"}
    )
    """Write parameters formatters using these options accept."""

    def __post_init__(self) -> None:
        if self.compression is not None:
            compression = str(self.compression).upper()
            if compression not in COMPRESSION_TYPES:
                raise SPHERExImageError(
                    f"Unknown FITS tile compression {self.compression!r}; "
                    f"use one of {sorted(COMPRESSION_TYPES)}"
                )
            object.__setattr__(self, "compression", compression)
        if self.quantize_level is not None:
            try:
                object.__setattr__(self, "quantize_level", float(self.quantize_level))
            except (TypeError, ValueError):
                raise SPHERExImageError(
                    f"quantize_level must be a number, not {self.quantize_level!r}"
                ) from None
        object.__setattr__(self, "checksum", bool(self.checksum))

    @classmethod
    def from_parameters(
        cls, parameters: Mapping[str, Any] | None, recipes: Mapping[str, Any] | None = None
    ) -> FitsWriteOptions:
        """Build options from formatter write parameters and write recipes.

        Parameters
        ----------
        parameters : `~collections.abc.Mapping`, optional
            Write parameters: ``recipe`` and any field of this class.
        recipes : `~collections.abc.Mapping`, optional
            Validated write recipes (see `validate_recipes`), by name.

        Returns
        -------
        options : `FitsWriteOptions`
            The recipe's options updated with the explicit parameters.

        Raises
        ------
        SPHERExImageError
            Raised if the recipe is not defined or a parameter is not understood.
        """
        parameters = dict(parameters or {})
        recipes = recipes or {}
        options = cls()
        recipe = parameters.pop("recipe", None)
        if recipe is not None:
            if recipe not in recipes:
                raise SPHERExImageError(
                    f"Write recipe {recipe!r} is not defined; defined recipes: {sorted(recipes)}"
                )
            options = replace(options, **(recipes[recipe] or {}))
        unknown = set(parameters) - {f.name for f in fields(cls)}
        if unknown:
            raise SPHERExImageError(f"Unknown FITS write parameters {sorted(unknown)}")
        return replace(options, **parameters)

    @classmethod
    def validate_recipes(cls, recipes: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
        """Check write recipes (``write_recipes`` formatter configuration).

        Parameters
        ----------
        recipes : `~collections.abc.Mapping`, optional
            Recipe name to a mapping of option values (or `None` for the defaults).

        Returns
        -------
        recipes : `dict` [`str`, `dict`]
            The recipes as plain dictionaries.

        Raises
        ------
        RuntimeError
            Raised if a recipe is not a mapping or holds unknown or invalid options (the exception
            daf_butler expects from recipe validation).
        """
        validated: dict[str, dict[str, Any]] = {}
        names = {f.name for f in fields(cls)}
        for name, recipe in (recipes or {}).items():
            if recipe is None:
                validated[name] = {}
                continue
            if not isinstance(recipe, Mapping):
                raise RuntimeError(
                    f"Write recipe {name!r} must be a mapping of {sorted(names)}, not {recipe!r}"
                )
            unknown = set(recipe) - names
            if unknown:
                raise RuntimeError(f"Write recipe {name!r} has unknown options {sorted(unknown)}")
            try:
                cls(**recipe)
            except SPHERExImageError as err:
                raise RuntimeError(f"Write recipe {name!r} is invalid: {err}") from err
            validated[name] = dict(recipe)
        return validated

    def image_hdu(self, data: np.ndarray, header: fits.Header, name: str | None) -> fits.ImageHDU:
        """Make an image extension, tile-compressed if requested.

        Parameters
        ----------
        data : `numpy.ndarray`
            Pixels.
        header : `astropy.io.fits.Header`
            Header cards beyond the structural ones.
        name : `str` or `None`
            ``EXTNAME``.

        Returns
        -------
        hdu : `astropy.io.fits.ImageHDU` or `astropy.io.fits.CompImageHDU`
            The extension.
        """
        if self.compression is None:
            return fits.ImageHDU(data, header=header, name=name)
        options: dict[str, Any] = {"compression_type": self.compression}
        if data.dtype.kind == "f":
            if self.quantize_level is not None:
                options["quantize_level"] = self.quantize_level
            elif self.compression in _LOSSLESS_FLOAT_COMPRESSION:
                options["quantize_level"] = 0.0
            options["dither_seed"] = DITHER_SEED_CHECKSUM
        return fits.CompImageHDU(data, header=header, name=name, **options)

    def compress(self, hdul: fits.HDUList) -> fits.HDUList:
        """Return a file with every image extension holding data tile-compressed as requested.

        Parameters
        ----------
        hdul : `astropy.io.fits.HDUList`
            HDUs to write.

        Returns
        -------
        hdul : `astropy.io.fits.HDUList`
            ``hdul`` itself when no compression is requested; otherwise a new list with the same primary
            HDU (FITS cannot compress a primary HDU), compressed image extensions and the other HDUs.
        """
        if self.compression is None:
            return hdul
        result = []
        for index, hdu in enumerate(hdul):
            if (
                index > 0
                and isinstance(hdu, fits.ImageHDU)
                and not isinstance(hdu, fits.CompImageHDU)
                and hdu.data is not None
            ):
                header = hdu.header.copy()
                # The data are physical values: scaling keywords would be applied twice.
                for keyword in ("XTENSION", "BITPIX", "PCOUNT", "GCOUNT", "EXTNAME", "BSCALE", "BZERO"):
                    header.remove(keyword, ignore_missing=True)
                for keyword in [k for k in header if k.startswith("NAXIS")]:
                    header.remove(keyword, ignore_missing=True)
                result.append(self.image_hdu(hdu.data, header, hdu.name or None))
            else:
                result.append(hdu)
        return fits.HDUList(result)
