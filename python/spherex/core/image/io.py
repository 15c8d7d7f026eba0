"""astropy I/O registry functions of `SPHERExImage`: ``SPHERExImage.read`` and ``image.write``.

Their keywords are those of the 2020 proof of concept's ``spherex_image_reader`` and
``spherex_image_writer`` (astropy's CCDData reader and writer, plus ``hdu_flags``), with the same
meaning, next to this package's ``slices`` and compression options.
"""

from __future__ import annotations

__all__ = ["spherex_image_reader", "spherex_image_writer"]

import os
from typing import Any, BinaryIO

from astropy.io import registry

from ..errors import SPHERExImageError
from ..fits.read_options import AUTO, FitsReadOptions, HduSelector
from .spherex_image import SPHERExImage

# astropy's CCDData reader refuses these, since the image would not come back as stored.
_REFUSED_OPEN_KEYWORDS = ("do_not_scale_image_data", "scale_back")


def spherex_image_reader(
    filename: str | os.PathLike | BinaryIO,
    hdu: int | str | None = None,
    unit: Any = None,
    hdu_uncertainty: HduSelector = AUTO,
    hdu_mask: HduSelector = AUTO,
    hdu_flags: HduSelector = AUTO,
    key_uncertainty_type: str = "UTYPE",
    hdu_psf: str | None = "PSFIMAGE",
    *,
    slices: Any = None,
    image_class: type[SPHERExImage] | None = None,
    **kwd: Any,
) -> SPHERExImage:
    """Read a `SPHERExImage` from FITS; the ``fits`` reader of astropy's I/O registry.

    The keywords are those of `astropy.nddata.fits_ccddata_reader` and of the 2020 proof of concept's
    reader (which added ``hdu_flags``), with the same meaning; by default every plane is found by name,
    so files in this package's layout, SPHEREx Level-2 files, CCDData files and files of the 2020 layout
    read without any.

    Parameters
    ----------
    filename : `str` or `os.PathLike` or file-like
        File to read (astropy's registry passes an open file).
    hdu : `int` or `str`, optional
        HDU of the image, by index or ``EXTNAME``; see `FitsReadOptions` for the default and ``0``.
    unit : `astropy.units.Unit` or `str`, optional
        Unit of the image, used instead of ``BUNIT`` (the uncertainty is then taken in it too).
    hdu_uncertainty, hdu_mask, hdu_flags : `int`, `str` or `None`, optional
        HDU of the variance (or other uncertainty), mask and flags planes by index or ``EXTNAME``;
        `None` leaves a plane out.  Found by name (and in the 2020 layout's places) by default.
    key_uncertainty_type : `str`, optional
        Keyword of the uncertainty HDU naming its class (``UTYPE``); variance without it.
    hdu_psf : `str` or `None`, optional
        ``EXTNAME`` of the ``psf`` kernel (``PSFIMAGE``, as CCDData's reader); `None` leaves it out.
    slices : `tuple` [`slice`, ...], optional
        Cutout in numpy (row, column) order.
    image_class : `type`, optional
        `SPHERExImage` subclass to read (subclasses register this function with it bound).
    **kwd
        Passed to `astropy.io.fits.open` (e.g. ``ignore_missing_end=True``, ``checksum=True``).

    Returns
    -------
    image : `SPHERExImage`
        The image.

    Raises
    ------
    TypeError
        Raised for ``do_not_scale_image_data`` or ``scale_back``, which CCDData's reader refuses too.
    SPHERExImageError
        Raised if a keyword has a value of the wrong kind.
    FitsLayoutError
        Raised if the file is not a readable SPHEREx image or the HDU asked for is not there.
    """
    refused = sorted(set(kwd) & set(_REFUSED_OPEN_KEYWORDS))
    if refused:
        name = (image_class or SPHERExImage).__name__
        raise TypeError(f"{name}.read does not support {refused}: the image must be read as stored")
    options = FitsReadOptions(
        hdu=hdu,
        unit=unit,
        hdu_uncertainty=hdu_uncertainty,
        hdu_mask=hdu_mask,
        hdu_flags=hdu_flags,
        key_uncertainty_type=key_uncertainty_type,
        hdu_psf=hdu_psf,
    )
    cls = SPHERExImage if image_class is None else image_class
    return cls.from_fits(filename, slices=slices, options=options, open_kwargs=kwd)


def spherex_image_writer(
    image: SPHERExImage,
    fileobj: str | os.PathLike | BinaryIO,
    hdu_mask: str | None = "MASK",
    hdu_uncertainty: str | None = "VARIANCE",
    hdu_flags: str | None = "FLAGS",
    wcs_relax: bool | int = True,
    key_uncertainty_type: str | None = None,
    as_image_hdu: bool = True,
    hdu_psf: str | None = "PSFIMAGE",
    *,
    overwrite: bool = False,
    compression: str | None = None,
    quantize_level: float | None = None,
    checksum: bool = False,
    **kwd: Any,
) -> None:
    """Write a `SPHERExImage` to FITS; the ``fits`` writer of astropy's I/O registry.

    The keywords are the 2020 proof of concept's writer's (CCDData's, plus ``hdu_flags``), with the
    same meaning, then this package's compression options.

    Parameters
    ----------
    image : `SPHERExImage`
        Image to write.
    fileobj : `str`, `os.PathLike` or file-like
        Output file.
    hdu_mask, hdu_uncertainty, hdu_flags : `str` or `None`, optional
        ``EXTNAME`` of the mask, variance and flags planes; `None` leaves a plane out.
    wcs_relax : `bool` or `int`, optional
        ``relax`` of `astropy.wcs.WCS.to_header`; `True` keeps SIP and every wcslib extension.
    key_uncertainty_type : `str`, optional
        Write the uncertainty class under this keyword (the 2020 writer wrote ``UTYPE``, which
        ``CCDData.read`` needs to take the plane as variance); none by default.
    as_image_hdu : `bool`, optional
        CCDData's choice of where the image goes; the SPHEREx layout always writes it as the ``IMAGE``
        extension behind a header-only primary HDU holding ``meta`` (CCDData's ``as_image_hdu=True``).
        `False` is refused rather than ignored.
    hdu_psf : `str` or `None`, optional
        ``EXTNAME`` of the ``psf`` kernel (``PSFIMAGE``, as CCDData writes it); `None` leaves it out.
    overwrite : `bool`, optional
        Replace an existing file.
    compression : `str`, optional
        Tile-compression algorithm for every plane (e.g. ``RICE_1``, ``GZIP_2``).
    quantize_level : `float`, optional
        Quantization of floating point planes when compressing.
    checksum : `bool`, optional
        Write ``CHECKSUM`` and ``DATASUM`` keywords.
    **kwd
        Passed to `astropy.io.fits.HDUList.writeto` (e.g. ``output_verify``).

    Raises
    ------
    FileExistsError
        Raised if the file exists and ``overwrite`` is `False`.
    SPHERExImageError
        Raised if the image cannot be represented in FITS, or for ``as_image_hdu=False``.
    """
    if as_image_hdu is not True:
        raise SPHERExImageError(
            f"as_image_hdu={as_image_hdu!r}: the SPHEREx layout keeps the image in the IMAGE extension and "
            "the metadata in a header-only primary HDU (as_image_hdu=True); CCDData.write writes the other"
        )
    writer = image.fits_writer_class(
        compression,
        quantize_level,
        checksum,
        hdu_flags=hdu_flags,
        hdu_uncertainty=hdu_uncertainty,
        hdu_mask=hdu_mask,
        hdu_psf=hdu_psf,
        wcs_relax=wcs_relax,
        key_uncertainty_type=key_uncertainty_type,
    )
    writer.write(image, fileobj, overwrite=overwrite, **kwd)


def _always_fits(origin: str, path: Any, fileobj: Any, *args: Any, **kwargs: Any) -> bool:
    """Identify every file as FITS, the only format of SPHERExImage.

    Files that are not FITS then fail in the reader with a `FitsLayoutError` naming them, rather than
    with astropy's "format could not be identified".
    """
    return True


with registry.delay_doc_updates(SPHERExImage):
    registry.register_reader("fits", SPHERExImage, spherex_image_reader)
    registry.register_writer("fits", SPHERExImage, spherex_image_writer)
    registry.register_identifier("fits", SPHERExImage, _always_fits)
