"""Butler formatter for `astropy.nddata.CCDData` datasets (FITS, astropy's CCDData layout)."""

from __future__ import annotations

__all__ = ["CCDDataFormatter"]

import warnings
from typing import Any

from astropy.io import fits
from astropy.nddata import CCDData, fits_ccddata_reader
from lsst.resources import ResourcePath

from ..core import DEFAULT_UNIT, PARSE_ERRORS, FitsLayoutError, open_fits
from .fits_formatter import FitsFormatter

_EXTENSION_KEYWORDS = ("XTENSION", "PCOUNT", "GCOUNT", "EXTNAME")


class CCDDataFormatter(FitsFormatter):
    """Read and write `astropy.nddata.CCDData` datasets in astropy's FITS layout.

    Files hold the image in the primary HDU, the uncertainty in ``UNCERT`` (with ``UTYPE``) and the
    mask in ``MASK``.  With the ``compression`` write parameter (see `spherex.core.FitsWriteOptions`)
    the image moves to a tile-compressed ``IMAGE`` extension behind a header-only primary HDU (read such
    files with ``CCDData.read(path, hdu="IMAGE")``: astropy's search for the first image extension skips
    compressed ones).  Images without ``BUNIT`` read as electron/s, as in the 2020 proof of concept.
    """

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
        self.check_type(in_memory_dataset, CCDData, "an astropy.nddata.CCDData")
        options = self.write_options()
        hdul = in_memory_dataset.to_hdu()
        if options.compression is not None:
            # FITS cannot compress a primary HDU: move the image to an extension.
            primary = hdul[0]
            image = fits.ImageHDU(primary.data, header=primary.header, name="IMAGE")
            hdul = options.compress(fits.HDUList([fits.PrimaryHDU(), image, *hdul[1:]]))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*HIERARCH card will be created.*")
            hdul.writeto(uri.ospath, overwrite=True, checksum=options.checksum)
