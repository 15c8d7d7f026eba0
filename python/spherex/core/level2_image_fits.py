"""FITS layout of SPHEREx Level-2 spectral images, as IRSA publishes them: the reader and the writer.

========== ======================================================================================
HDU        Contents
========== ======================================================================================
PRIMARY    Header only.
IMAGE      float32 calibrated surface brightness, ``BUNIT = 'MJy / sr'``, zodiacal light included;
           the observation keywords (``OBSID``, ``DETECTOR``, ``MJD-BEG``/``MJD-AVG``/``MJD-END``);
           the celestial WCS (``RA---TAN-SIP``), alternate WCS ``A`` (0-based pixel coordinates on
           the full array, which cutouts shift) and ``W`` (``WAVE-TAB`` lookup into ``WCS-WAVE``).
FLAGS      int32 bitmask, ``HIERARCH MP_<NAME> = bit`` (may be ``RICE_1`` tile-compressed).
VARIANCE   float32, ``MJy2 / sr2``.
ZODI       float32, ``MJy / sr``: the zodiacal light model.
PSF        float32 cube (zones, n, n), oversampled; zone centres in ``XCTR_i`` and ``YCTR_i``.
WCS-WAVE   Binary table, one row: ``X``, ``Y`` (control points, 1-based pixels) and ``VALUES``
           (wavelength and bandwidth, micron, ``TDIM = (2, nx, ny)``).
========== ======================================================================================

The reader is a `~spherex.core.SPHERExImageFitsReader`, so it also reads the files of the 2020 proof of
concept and of this package (without the Level-2 planes, which are then `None`).
"""

from __future__ import annotations

__all__ = ["SPHERExLevel2FitsReader", "SPHERExLevel2FitsWriter", "spectral_wcs_cards"]

import re
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy import units as u
from astropy.io import fits

from .errors import FitsLayoutError, SPHERExImageError
from .level2_products import Level2PSF, SpectralLookup
from .spherex_image_fits import SPHERExImageFitsReader, SPHERExImageFitsWriter, metadata_to_header, parse_unit

if TYPE_CHECKING:
    from .level2_image import SPHERExLevel2Image

_ZONE_CENTRE = re.compile(r"^([XY])CTR_(\d+)$")
_WAVE_TABLE = "WCS-WAVE"


def spectral_wcs_cards(origin: tuple[int, int] = (0, 0)) -> list[fits.Card]:
    """Return the alternate WCS ``A`` and ``W`` cards of a Level-2 ``IMAGE`` header.

    Parameters
    ----------
    origin : `tuple` [`int`, `int`], optional
        0-based (x, y) position on the full array of the image's pixel (0, 0).

    Returns
    -------
    cards : `list` [`astropy.io.fits.Card`]
        ``A``: 0-based active pixel coordinates.  ``W``: wavelength and bandwidth by ``-TAB`` lookup
        into the ``WCS-WAVE`` table, indexed by 1-based full-array pixel coordinates.
    """
    ox, oy = origin
    cards = [
        ("WCSAXESA", 2, "Number of axes of WCS A"),
        ("WCSNAMEA", "0-based active pixel coordinates", "Coordinate system title"),
        ("CTYPE1A", "X", ""),
        ("CTYPE2A", "Y", ""),
        ("CRPIX1A", 1.0, ""),
        ("CRPIX2A", 1.0, ""),
        ("CRVAL1A", float(ox), "0-based full-array column of pixel 1"),
        ("CRVAL2A", float(oy), "0-based full-array row of pixel 1"),
        ("CDELT1A", 1.0, ""),
        ("CDELT2A", 1.0, ""),
        ("WCSAXESW", 2, "Number of axes of WCS W"),
        ("WCSNAMEW", "Approximated per-pixel wavelength and bandpass", "WCS label"),
        ("CTYPE1W", "WAVE-TAB", "Wavelength by table lookup"),
        ("CTYPE2W", "WAVE-TAB", "Bandwidth by table lookup"),
        ("CUNIT1W", "um", ""),
        ("CUNIT2W", "um", ""),
        ("CRPIX1W", 0.0, ""),
        ("CRPIX2W", 0.0, ""),
        ("CRVAL1W", float(ox), "Index vector X is in full-array pixels"),
        ("CRVAL2W", float(oy), "Index vector Y is in full-array pixels"),
        ("CDELT1W", 1.0, ""),
        ("CDELT2W", 1.0, ""),
        ("PS1_0W", _WAVE_TABLE, "Table extension"),
        ("PS1_1W", "VALUES", "Coordinate array column"),
        ("PS1_2W", "X", "Index vector column"),
        ("PV1_3W", 1, "Axis of the coordinate array"),
        ("PS2_0W", _WAVE_TABLE, "Table extension"),
        ("PS2_1W", "VALUES", "Coordinate array column"),
        ("PS2_2W", "Y", "Index vector column"),
        ("PV2_3W", 2, "Axis of the coordinate array"),
    ]
    return [fits.Card(*card) for card in cards]


class SPHERExLevel2FitsReader(SPHERExImageFitsReader):
    """Read SPHEREx Level-2 files (and, with the Level-2 planes absent, every layout of the base class).

    Parameters
    ----------
    path : `str`, `os.PathLike` or file-like
        File to read.
    memmap : `bool`, optional
        Memory-map the file.

    Raises
    ------
    FileNotFoundError
        Raised if ``path`` does not exist.
    FitsLayoutError
        Raised if the file is not FITS, is truncated, has no image, or its planes differ in shape.
    """

    zodi_hdu_name: str = "ZODI"
    psf_hdu_name: str = "PSF"
    wave_hdu_name: str = _WAVE_TABLE

    components: tuple[str, ...] = SPHERExImageFitsReader.components + ("zodi", "psf", "wavelength")

    def _check_plane_shapes(self) -> None:
        super()._check_plane_shapes()
        hdu = self._plane_hdu(self.zodi_hdu_name)
        if hdu is not None and tuple(hdu.shape) != self.shape:
            raise FitsLayoutError(
                self.path,
                f"the zodi plane (HDU {hdu.name}) has shape {tuple(hdu.shape)}; the image has {self.shape}",
            )

    def origin(self, slices: Any = None) -> tuple[int, int]:
        """Return where pixel (0, 0) of the (cut out) image lies on the full array.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order.

        Returns
        -------
        origin : `tuple` [`int`, `int`]
            0-based (x, y): from the alternate WCS ``A`` (which IRSA cutouts carry), plus the cutout start.
        """
        header = self.image_header
        ox = header.get("CRVAL1A", 0.0) + header.get("CDELT1A", 1.0) * (1.0 - header.get("CRPIX1A", 1.0))
        oy = header.get("CRVAL2A", 0.0) + header.get("CDELT2A", 1.0) * (1.0 - header.get("CRPIX2A", 1.0))
        normalized = self.normalize_slices(slices)
        if normalized is not None:
            if any(s.step != 1 for s in normalized):
                raise SPHERExImageError(f"{self.path}: Level-2 cutouts must have a step of 1, not {slices!r}")
            oy += normalized[0].start
            ox += normalized[1].start
        return int(round(ox)), int(round(oy))

    def read_zodi(self, slices: Any = None) -> np.ndarray | None:
        """Read the zodiacal light model.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order.

        Returns
        -------
        zodi : `numpy.ndarray` or `None`
            MJy/sr; `None` if the file has no ``ZODI`` HDU.
        """
        hdu = self._plane_hdu(self.zodi_hdu_name)
        return None if hdu is None else self._read_pixels(hdu, self.normalize_slices(slices))

    def read_psf(self, slices: Any = None) -> Level2PSF | None:
        """Read the PSF cube and its zone centres.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order (moves the origin; the cube is kept whole).

        Returns
        -------
        psf : `Level2PSF` or `None`
            `None` if the file has no ``PSF`` HDU.

        Raises
        ------
        FitsLayoutError
            Raised if the cube is not 3-d or its zone centres do not match its planes.
        """
        hdu = self._by_name.get(self.psf_hdu_name)
        if hdu is None:
            return None
        centres: dict[str, dict[int, float]] = {"X": {}, "Y": {}}
        for card in hdu.header.cards:
            match = _ZONE_CENTRE.match(card.keyword)
            if match:
                centres[match.group(1)][int(match.group(2))] = float(card.value)
        xs = [centres["X"][k] for k in sorted(centres["X"])]
        ys = [centres["Y"][k] for k in sorted(centres["Y"])]
        try:
            return Level2PSF(
                np.array(hdu.data),
                xs,
                ys,
                oversampling=int(hdu.header.get("OVERSAMP", 10)),
                origin=self.origin(slices),
            )
        except SPHERExImageError as err:
            raise FitsLayoutError(self.path, f"HDU {self.psf_hdu_name}: {err}") from err

    def read_spectral_lookup(self, slices: Any = None) -> SpectralLookup | None:
        """Read the ``WCS-WAVE`` lookup table.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order (moves the origin).

        Returns
        -------
        lookup : `SpectralLookup` or `None`
            `None` if the file has no ``WCS-WAVE`` HDU.

        Raises
        ------
        FitsLayoutError
            Raised if the table lacks the ``X``, ``Y`` or ``VALUES`` column or they do not agree.
        """
        hdu = self._by_name.get(self.wave_hdu_name)
        if hdu is None:
            return None
        if not isinstance(hdu, fits.BinTableHDU):
            raise FitsLayoutError(
                self.path, f"HDU {self.wave_hdu_name} is a {type(hdu).__name__}, not a table"
            )
        names = [name.upper() for name in hdu.columns.names]
        missing = {"X", "Y", "VALUES"} - set(names)
        if missing or len(hdu.data) < 1:
            raise FitsLayoutError(
                self.path, f"HDU {self.wave_hdu_name} needs one row with columns X, Y, VALUES; has {names}"
            )
        row = hdu.data[0]
        x, y = np.ravel(row["X"]), np.ravel(row["Y"])
        values = np.asarray(row["VALUES"], dtype=float).reshape(len(y), len(x), 2)
        try:
            return SpectralLookup(x, y, values, origin=self.origin(slices))
        except SPHERExImageError as err:
            raise FitsLayoutError(self.path, f"HDU {self.wave_hdu_name}: {err}") from err

    def read_wavelength(self, slices: Any = None) -> np.ndarray | None:
        """Return per-pixel wavelength and bandwidth maps computed from ``WCS-WAVE``.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order.

        Returns
        -------
        maps : `numpy.ndarray` or `None`
            float32 ``(2, rows, columns)``, micron; `None` without a ``WCS-WAVE`` HDU.
        """
        lookup = self.read_spectral_lookup(slices)
        if lookup is None:
            return None
        normalized = self.normalize_slices(slices)
        shape = (
            self.shape
            if normalized is None
            else tuple(len(range(*s.indices(n))) for s, n in zip(normalized, self.shape))
        )
        return lookup.maps(shape)

    def _read_component(self, component: str, slices: Any) -> Any:
        match component:
            case "zodi":
                return self.read_zodi(slices)
            case "psf":
                return self.read_psf(slices)
            case "wavelength":
                return self.read_wavelength(slices)
        return super()._read_component(component, slices)

    def _read_parts(self, slices: tuple[slice, ...] | None) -> dict[str, Any]:
        parts = super()._read_parts(slices)
        parts.update(
            zodi=self.read_zodi(slices),
            psf_model=self.read_psf(slices),
            spectral_lookup=self.read_spectral_lookup(slices),
        )
        return parts


class SPHERExLevel2FitsWriter(SPHERExImageFitsWriter):
    """Write a `~spherex.core.SPHERExLevel2Image` in IRSA's Level-2 layout.

    Observation metadata go to the ``IMAGE`` header (as in IRSA's files), the primary HDU stays empty.

    Parameters
    ----------
    compression : `str`, optional
        Tile-compression algorithm for the image planes (``RICE_1`` ...).
    quantize_level : `float`, optional
        Quantization of floating point planes when compressing.
    checksum : `bool`, optional
        Write ``CHECKSUM`` and ``DATASUM`` keywords in every HDU.
    """

    def to_hdulist(self, image: SPHERExLevel2Image) -> fits.HDUList:
        """Build the HDUs of a Level-2 image.

        Parameters
        ----------
        image : `~spherex.core.SPHERExLevel2Image`
            Image to convert.

        Returns
        -------
        hdul : `astropy.io.fits.HDUList`
            ``PRIMARY``, ``IMAGE``, ``FLAGS``, ``VARIANCE``, then ``ZODI``, ``PSF`` and ``WCS-WAVE`` when
            the image has them.
        """
        hdul = super().to_hdulist(image)
        image_header = hdul["IMAGE"].header
        # IRSA spells units as astropy's generic format does: 'MJy / sr', 'MJy2 / sr2'.
        for hdu in hdul[1:]:
            if "BUNIT" in hdu.header and not isinstance(hdu, fits.CompImageHDU):
                hdu.header["BUNIT"] = _generic_unit(hdu.header["BUNIT"])
        image_header.extend(metadata_to_header(image.meta).cards, update=True)
        lookup = getattr(image, "spectral_lookup", None)
        psf = getattr(image, "psf_model", None)
        origin = lookup.origin if lookup is not None else (psf.origin if psf is not None else (0, 0))
        if lookup is not None:
            image_header.extend(spectral_wcs_cards(origin))
        zodi = getattr(image, "zodi", None)
        if zodi is not None:
            header = fits.Header([("BUNIT", hdul["IMAGE"].header["BUNIT"], "Zodiacal light model")])
            hdul.append(self._plane_hdu(np.asarray(zodi, dtype=np.float32), header, "ZODI"))
        if psf is not None:
            header = fits.Header([("OVERSAMP", psf.oversampling, "PSF pixels per image pixel")])
            for index, (xc, yc) in enumerate(zip(psf.x_centers, psf.y_centers, strict=True)):
                header[f"XCTR_{index}"] = (float(xc), f"Zone {index} centre x, 1-based array pixel")
                header[f"YCTR_{index}"] = (float(yc), f"Zone {index} centre y, 1-based array pixel")
            hdul.append(fits.ImageHDU(np.asarray(psf.cube, dtype=np.float32), header, name="PSF"))
        if lookup is not None:
            hdul.append(_wave_table(lookup))
        return hdul

    def _primary_header(self, image: SPHERExLevel2Image) -> fits.Header:
        return fits.Header()


def _wave_table(lookup: SpectralLookup) -> fits.BinTableHDU:
    nx, ny = len(lookup.x), len(lookup.y)
    columns = [
        fits.Column(
            name="X", format=f"{nx}J", dim=f"({nx})", array=np.round(lookup.x)[None, :].astype(np.int32)
        ),
        fits.Column(
            name="Y", format=f"{ny}J", dim=f"({ny})", array=np.round(lookup.y)[None, :].astype(np.int32)
        ),
        fits.Column(
            name="VALUES",
            format=f"{2 * nx * ny}E",
            dim=f"(2,{nx},{ny})",
            array=lookup.values.astype(np.float32)[None, ...],
        ),
    ]
    return fits.BinTableHDU.from_columns(columns, name=_WAVE_TABLE)


def _generic_unit(text: str) -> str:
    unit = parse_unit(text)
    return text if isinstance(unit, u.UnrecognizedUnit) else unit.to_string()
