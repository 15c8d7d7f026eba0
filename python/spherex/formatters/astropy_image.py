"""Butler formatter for `astropy.io.fits.HDUList` datasets (the ``AstropyImage`` storage class)."""

from __future__ import annotations

__all__ = ["AstropyImageFormatter"]

import warnings
from typing import Any

from astropy.io import fits
from lsst.resources import ResourcePath

from ..core import PARSE_ERRORS, FitsLayoutError, open_fits
from .fits_formatter import FitsFormatter


class AstropyImageFormatter(FitsFormatter):
    """Read and write any FITS file as an `astropy.io.fits.HDUList`.

    The whole file is read into memory and closed, so the returned HDUs do not depend on the stored
    file.  Write parameters as for `~spherex.formatters.SPHERExImageFormatter` (``compression``,
    ``quantize_level``, ``checksum``, ``recipe``); compression applies to image extensions only, since
    FITS cannot tile-compress a primary HDU.
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
            The file as an `astropy.io.fits.HDUList`, all data in memory.

        Raises
        ------
        FileNotFoundError
            Raised if the file does not exist.
        spherex.core.FitsLayoutError
            Raised if the file is not FITS, is truncated, or does not hold what this formatter reads.
        """
        hdul, name = open_fits(path, memmap=False)
        with hdul:
            for index, hdu in enumerate(hdul):
                try:
                    # Load every HDU's data now: the file is closed when this returns.
                    _ = hdu.data
                except PARSE_ERRORS as err:
                    raise FitsLayoutError(name, f"cannot read the data of HDU {index} ({err})") from err
        return hdul

    def write_local_file(self, in_memory_dataset: Any, uri: ResourcePath) -> None:
        """Write the dataset to a local file.

        Parameters
        ----------
        in_memory_dataset : `astropy.io.fits.HDUList`
            Dataset to write.
        uri : `lsst.resources.ResourcePath`
            Local file to write.

        Raises
        ------
        TypeError
            Raised if the dataset is not a `astropy.io.fits.HDUList`.
        spherex.core.SPHERExImageError
            Raised if the write parameters are invalid or the dataset cannot be written to FITS.
        """
        self.check_type(in_memory_dataset, fits.HDUList, "an astropy.io.fits.HDUList")
        options = self.write_options()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*HIERARCH card will be created.*")
            options.compress(in_memory_dataset).writeto(uri.ospath, overwrite=True, checksum=options.checksum)
