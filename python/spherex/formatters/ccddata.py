"""Butler formatter for `astropy.nddata.CCDData` datasets (FITS, astropy's CCDData layout)."""

from __future__ import annotations

__all__ = ["CCDDataFormatter"]

import warnings
from collections.abc import Mapping
from typing import Any

from astropy.io import fits
from astropy.nddata import CCDData, fits_ccddata_reader
from lsst.daf.butler import FormatterV2
from lsst.resources import ResourcePath

from ..core import DEFAULT_UNIT, PARSE_ERRORS, FitsLayoutError, FitsWriteOptions, open_fits

_EXTENSION_KEYWORDS = ("XTENSION", "PCOUNT", "GCOUNT", "EXTNAME")


class CCDDataFormatter(FormatterV2):
    """Read and write `astropy.nddata.CCDData` datasets in astropy's FITS layout.

    Files hold the image in the primary HDU, the uncertainty in ``UNCERT`` (with ``UTYPE``) and the
    mask in ``MASK``.  With the ``compression`` write parameter (see `spherex.core.FitsWriteOptions`)
    the image moves to a tile-compressed ``IMAGE`` extension behind a header-only primary HDU (read such
    files with ``CCDData.read(path, hdu="IMAGE")``: astropy's search for the first image extension skips
    compressed ones).  Images without ``BUNIT`` read as electron/s, as in the 2020 proof of concept.
    """

    default_extension = ".fits"
    supported_extensions = frozenset({".fits", ".fit", ".fts", ".fits.fz"})
    unsupported_parameters = None
    supported_write_parameters = FitsWriteOptions.write_parameters
    can_read_from_local_file = True

    @classmethod
    def validate_write_recipes(cls, recipes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """Check the write recipes of the formatter configuration.

        Parameters
        ----------
        recipes : `~collections.abc.Mapping`, optional
            Recipe name to options (``compression``, ``quantize_level``, ``checksum``).

        Returns
        -------
        recipes : `dict`
            The validated recipes.

        Raises
        ------
        RuntimeError
            Raised if a recipe holds unknown or invalid options.
        """
        return FitsWriteOptions.validate_recipes(recipes)

    def read_from_local_file(self, path: str, component: str | None = None, expected_size: int = -1) -> Any:
        """Read the dataset from a local file.

        Parameters
        ----------
        path : `str`
            Local file.
        component : `str`, optional
            Component to read (not supported).
        expected_size : `int`, optional
            Size recorded by the datastore (checked by the caller).

        Returns
        -------
        dataset : `typing.Any`
            The image as `astropy.nddata.CCDData`.

        Raises
        ------
        FileNotFoundError
            Raised if the file does not exist.
        spherex.core.FitsLayoutError
            Raised if the file is not FITS, is truncated, or does not hold what this formatter reads.
        """
        hdul, name = open_fits(path, memmap=False)
        try:
            with hdul:
                index = next(
                    (i for i, hdu in enumerate(hdul) if hdu.is_image and hdu.header.get("NAXIS", 0)), None
                )
                if index is None:
                    raise FitsLayoutError(name, "no HDU holds an image")
                has_unit = "BUNIT" in hdul[index].header or "BUNIT" in hdul[0].header
            # Name the image HDU: astropy's search for the first image extension skips compressed ones.
            ccd = fits_ccddata_reader(path, hdu=index, unit=None if has_unit else DEFAULT_UNIT)
        except FitsLayoutError:
            raise
        except PARSE_ERRORS as err:
            raise FitsLayoutError(name, f"cannot read as CCDData ({err})") from err
        if index > 0:
            # The image came from an extension: its header's extension keywords are no metadata.
            for keyword in _EXTENSION_KEYWORDS:
                ccd.meta.remove(keyword, ignore_missing=True, remove_all=True)
        return ccd

    def write_local_file(self, in_memory_dataset: Any, uri: ResourcePath) -> None:
        """Write the dataset to a local file.

        Parameters
        ----------
        in_memory_dataset : `astropy.nddata.CCDData`
            Dataset to write.
        uri : `lsst.resources.ResourcePath`
            Local file to write.

        Raises
        ------
        TypeError
            Raised if the dataset is not a `astropy.nddata.CCDData`.
        spherex.core.SPHERExImageError
            Raised if the write parameters are invalid or the dataset cannot be written to FITS.
        """
        if not isinstance(in_memory_dataset, CCDData):
            raise TypeError(
                f"Dataset {self.dataset_ref.datasetType.name} {self.data_id} must be an "
                f"astropy.nddata.CCDData to be written by {self.name()}, "
                f"not {type(in_memory_dataset).__name__}"
            )
        options = FitsWriteOptions.from_parameters(self.write_parameters, self.write_recipes)
        hdul = in_memory_dataset.to_hdu()
        if options.compression is not None:
            # FITS cannot compress a primary HDU: move the image to an extension.
            primary = hdul[0]
            image = fits.ImageHDU(primary.data, header=primary.header, name="IMAGE")
            hdul = options.compress(fits.HDUList([fits.PrimaryHDU(), image, *hdul[1:]]))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*HIERARCH card will be created.*")
            hdul.writeto(uri.ospath, overwrite=True, checksum=options.checksum)
