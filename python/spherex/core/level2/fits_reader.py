"""FITS layout of SPHEREx Level-2 spectral images, as IRSA publishes them: the reader.

========== ======================================================================================
HDU        Contents (sources: IRSA tutorials "Introduction to SPHEREx Spectral Images" and
           "Understanding and Extracting the PSF Extension in a SPHEREx Cutout", printed outputs)
========== ======================================================================================
PRIMARY    Header only; ``VERSION`` (pipeline version, e.g. ``6.4+psffix1``).
IMAGE      float32 calibrated surface brightness, ``BUNIT = 'MJy / sr'``, zodiacal light included;
           the observation keywords (``OBSID``, ``DETECTOR``, times); the celestial WCS
           (``RA---TAN-SIP``), alternate WCS ``A`` (0-based active pixel coordinates: a cutout's
           parent pixel is ``1 + x - CRPIX1A``) and ``W`` (``WAVE-TAB`` lookup into ``WCS-WAVE``).
FLAGS      int32 bitmask, ``HIERARCH MP_<NAME> = bit`` (QR1, QR2) or ``MSKNnnnn = '<NAME>'`` and
           ``RICE_1`` tile compression (QR3, as public third-party readers report).
VARIANCE   float32, ``MJy2 / sr2``.
ZODI       float32, ``MJy / sr``: the zodiacal light model.
PSF        float32 cube (zones, 101, 101), ``OVERSAMP = 10``, zones in ``XCTR_k``/``YCTR_k``/``XWID_k``/
           ``YWID_k``; QR3 has an ``EPSF`` table instead (see `spherex.core.level2.psf`).
WCS-WAVE   Binary table, one row: ``X``, ``Y`` (control points, 1-based pixels) and ``VALUES``
           (wavelength and bandwidth, micron, ``TDIM = (2, nx, ny)``): 7 x 7 or 9 x 9 in QR1 files,
           11 x 11 in QR2, 9 x 9 in QR3 (third-party report).
========== ======================================================================================

The reader is a `~spherex.core.SPHERExImageFitsReader`, so it also reads the files of the 2020 proof of
concept and of this package (without the Level-2 planes, which are then `None`).  The writer is in
`spherex.core.level2.fits_writer`.
"""

from __future__ import annotations

__all__ = ["SPHERExLevel2FitsReader", "spectral_wcs_cards"]

import re
from dataclasses import replace
from typing import Any

import numpy as np
from astropy.io import fits

from ..errors import FitsLayoutError, SPHERExImageError
from ..fits.flags import MAX_FLAG_BIT, validate_flag_defs
from ..image.fits import SPHERExImageFitsReader
from .products import Level2PSF, SpectralLookup
from .psf import PSFPlanes
from .psf_zone_reads import RemotePSFZones

_ZONE_CARD = re.compile(r"^([XY])(CTR|WID)_(\d+)$")
_MASK_NAME_CARD = re.compile(r"^MSKN(\d{4})$")
_FLAG_CARD = re.compile(r"^(?:MP_(.+)|MSKN\d{4})$")
_WAVE_TABLE = "WCS-WAVE"
# Third-party readers report QR3's effective PSFs oversampled 5 times; no IRSA print shows the keyword.
_EPSF_OVERSAMPLING = 5


def spectral_wcs_cards(origin: tuple[int, int] = (0, 0)) -> list[fits.Card]:
    """Return the alternate WCS ``A`` and ``W`` cards of a Level-2 ``IMAGE`` header.

    Parameters
    ----------
    origin : `tuple` [`int`, `int`], optional
        0-based (x, y) position on the full array of the image's pixel (0, 0).

    Returns
    -------
    cards : `list` [`astropy.io.fits.Card`]
        ``A``: 0-based active pixel coordinates, as IRSA's cutouts write them: ``CRVAL1A = 0`` and
        ``CRPIX1A = 1 - x0`` (negative for a cutout), so that IRSA's recipe ``1 + x - CRPIX1A`` gives the
        parent pixel.  ``W``: wavelength and bandwidth by ``-TAB`` lookup into the ``WCS-WAVE`` table,
        indexed by 1-based full-array pixel coordinates.
    """
    ox, oy = origin
    cards = [
        ("WCSAXESA", 2, "Number of axes of WCS A"),
        ("WCSNAMEA", "0-based active pixel coordinates", "Coordinate system title"),
        ("CTYPE1A", "X", ""),
        ("CTYPE2A", "Y", ""),
        ("CRPIX1A", float(1 - ox), "Parent x = 1 + x - CRPIX1A (0-based x)"),
        ("CRPIX2A", float(1 - oy), "Parent y = 1 + y - CRPIX2A (0-based y)"),
        ("CRVAL1A", 0.0, ""),
        ("CRVAL2A", 0.0, ""),
        ("CDELT1A", 1.0, ""),
        ("CDELT2A", 1.0, ""),
        ("WCSAXESW", 2, "Number of axes of WCS W"),
        ("WCSNAMEW", "Approximated per-pixel wavelength and bandwidth", "WCS label"),
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


class SPHERExLevel2FitsReader(RemotePSFZones, SPHERExImageFitsReader):
    """Read SPHEREx Level-2 files of every release (and, with the Level-2 planes absent, every layout of the
    base class).

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
    epsf_hdu_name: str = "EPSF"
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

    @property
    def version(self) -> str | None:
        """Pipeline ``VERSION`` from the PRIMARY header, where IRSA's tutorial reads it (`str` or `None`)."""
        value = self.primary_header.get("VERSION", self.image_header.get("VERSION"))
        return None if value is None else str(value).strip()

    def origin(self, slices: Any = None) -> tuple[int, int]:
        """Return where pixel (0, 0) of the (cut out) image lies on the full array.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order.

        Returns
        -------
        origin : `tuple` [`int`, `int`]
            0-based (x, y): from the alternate WCS ``A`` (``CRVAL + CDELT * (1 - CRPIX)``, which is
            ``1 - CRPIX1A`` in IRSA's cutouts), plus the start of ``slices``.
        """
        ox, oy = self.remember(f"origin:{self._image_hdu.index}", self._parse_origin)
        normalized = self.normalize_slices(slices)
        if normalized is not None:
            if any(s.step != 1 for s in normalized):
                raise SPHERExImageError(f"{self.path}: Level-2 cutouts must have a step of 1, not {slices!r}")
            oy += normalized[0].start
            ox += normalized[1].start
        return int(round(ox)), int(round(oy))

    def _parse_origin(self) -> tuple[float, float]:
        header = self.image_header
        ox = header.get("CRVAL1A", 0.0) + header.get("CDELT1A", 1.0) * (1.0 - header.get("CRPIX1A", 1.0))
        oy = header.get("CRVAL2A", 0.0) + header.get("CDELT2A", 1.0) * (1.0 - header.get("CRPIX2A", 1.0))
        return ox, oy

    def read_flag_defs(self) -> dict[str, int]:
        """Read the flag definitions: ``MP_<NAME> = bit`` (QR1, QR2) and ``MSKNnnnn = '<NAME>'`` (QR3) cards.

        Returns
        -------
        flag_defs : `dict` [`str`, `int`]
            Flag name to bit; empty if there is no ``FLAGS`` HDU or it defines no flags.

        Raises
        ------
        FitsLayoutError
            Raised if a card gives a bit outside 0-31, a name no FITS keyword can hold, or one name twice.
        """
        # Keyed by the flags plane the read options chose too: the base class's definitions depend on it.
        flags = self._planes["flags"]
        key = f"level2_flag_defs:{None if flags is None else flags.index}"
        return dict(self.remember(key, self._parse_flag_defs))

    def _parse_flag_defs(self) -> dict[str, int]:
        flag_defs = super().read_flag_defs()
        hdu = self._plane_hdu(self.flags_hdu_name)
        if hdu is None:
            return flag_defs
        for card in hdu.header.cards:
            match = _MASK_NAME_CARD.match(card.keyword)
            if match is None:
                continue
            bit, name = int(match.group(1)), str(card.value).strip().upper()
            if bit > MAX_FLAG_BIT or not isinstance(card.value, str):
                raise FitsLayoutError(
                    self.path, f"flag card {card.keyword} = {card.value!r} is not a flag name"
                )
            if flag_defs.get(name, bit) != bit:
                raise FitsLayoutError(self.path, f"flag {name} is bit {flag_defs[name]} and bit {bit}")
            flag_defs[name] = bit
        try:
            return validate_flag_defs(flag_defs)
        except SPHERExImageError as err:
            raise FitsLayoutError(self.path, f"HDU {hdu.name}: {err}") from err

    def read_flag_comments(self) -> dict[str, str]:
        """Read what the flag cards say of each flag (their comments, e.g. ``Transient detected during SUR``).

        Returns
        -------
        comments : `dict` [`str`, `str`]
            Flag name to comment, for flags whose card has one.
        """
        return dict(self.remember(f"flag_comments:{self._image_hdu.index}", self._parse_flag_comments))

    def _parse_flag_comments(self) -> dict[str, str]:
        hdu = self._plane_hdu(self.flags_hdu_name)
        comments = {}
        for card in () if hdu is None else hdu.header.cards:
            match = _FLAG_CARD.match(card.keyword)
            if match and card.comment:
                name = match.group(1) or str(card.value).strip()
                comments[name.upper()] = card.comment
        return comments

    def read_zodi(self, slices: Any = None) -> np.ndarray | None:
        """Read the zodiacal light model (MJy/sr) of ``slices``; `None` without a ``ZODI`` HDU."""
        hdu = self._plane_hdu(self.zodi_hdu_name)
        return None if hdu is None else self._read_pixels(hdu, self.normalize_slices(slices))

    def read_psf(self, slices: Any = None) -> Level2PSF | None:
        """Read the PSF with each plane's zone, correct for every release.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order (moves the origin; the PSFs are kept whole).

        Returns
        -------
        psf : `Level2PSF` or `None`
            From the ``PSF`` cube, its zone labels corrected as IRSA's notice says unless `version` is
            ``+psffix1`` or 6.5.6 and later; or from a QR3 ``EPSF`` table.  `None` if the file has neither.

        Raises
        ------
        FitsLayoutError
            Raised if the cube is not 3-d, its zone cards do not match its planes, or (for a file with the
            PSF header error) its zone centres are not a grid.
        """
        hdu = self._psf_by_zone() if slices is not None else None
        if hdu is not None:
            # A remote cutout: the planes of the zones it covers, not the 121-plane cube.
            return self._partial_psf(hdu, self.normalize_slices(slices), self.origin(slices))
        psf = self.remember(f"psf:{self._image_hdu.index}", self._parse_psf)
        # Parsed once per file (zone cards and cube): a cutout moves only the origin.  The cube is
        # read-only, shared by every reader of the file.
        return None if psf is None else replace(psf, origin=self.origin(slices))

    def _parse_psf_zones(self, hdu: Any) -> Level2PSF:
        """Return the PSF of the cube's zone cards, its cube an empty `PSFPlanes` (for remote cutouts)."""
        return self._parse_psf(PSFPlanes(hdu.shape, hdu.dtype, {}, self.path))

    def _parse_psf(self, planes: PSFPlanes | None = None) -> Level2PSF | None:
        hdu = self._plane_hdu(self.psf_hdu_name)
        try:
            if hdu is not None:
                count = hdu.shape[0] if len(hdu.shape) == 3 else len(hdu.data) if hdu.data is not None else 0
                cards = self._zone_cards(hdu.header, count)
                cube = planes
                if cube is None:
                    cube = np.array(hdu.data)
                    cube.setflags(write=False)
                return Level2PSF.from_labels(
                    cube,
                    cards["XCTR"],
                    cards["YCTR"],
                    version=self.version,
                    oversampling=int(hdu.header.get("OVERSAMP", 10)),
                    origin=self.origin(),
                    x_widths=cards.get("XWID"),
                    y_widths=cards.get("YWID"),
                )
            table = self._by_name.get(self.epsf_hdu_name)
            return None if table is None else self._read_epsf(table, None)
        except (SPHERExImageError, ValueError, TypeError) as err:
            if isinstance(err, FitsLayoutError):
                raise
            name = self.psf_hdu_name if hdu is not None else self.epsf_hdu_name
            raise FitsLayoutError(self.path, f"HDU {name}: {err}") from err

    def _zone_cards(self, header: fits.Header, planes: int) -> dict[str, np.ndarray]:
        """Return ``XCTR``/``YCTR`` (and ``XWID``/``YWID`` when complete) in label order, checked."""
        cards: dict[str, dict[int, float]] = {}
        for card in header.cards:
            match = _ZONE_CARD.match(card.keyword)
            if match:
                if isinstance(card.value, bool) or not isinstance(card.value, int | float):
                    raise FitsLayoutError(
                        self.path, f"HDU PSF: {card.keyword} = {card.value!r} is not a number"
                    )
                cards.setdefault(match.group(1) + match.group(2), {})[int(match.group(3))] = float(card.value)
        result = {}
        for name, by_label in cards.items():
            labels = sorted(by_label)
            # IRSA numbers the zones from 1; this package's files before 2026-11 numbered them from 0.
            if labels != list(range(labels[0], labels[0] + planes)) or labels[0] not in (0, 1):
                if name in ("XWID", "YWID"):
                    continue
                raise FitsLayoutError(
                    self.path, f"HDU PSF has {planes} planes but {name}_k cards {labels[:3]}...{labels[-1:]}"
                )
            result[name] = np.array([by_label[label] for label in labels])
        if "XCTR" not in result or "YCTR" not in result:
            raise FitsLayoutError(self.path, "HDU PSF has no XCTR_k/YCTR_k zone centre cards")
        return result

    def _read_epsf(self, table: Any, slices: Any) -> Level2PSF:
        if not isinstance(table, fits.BinTableHDU):
            raise FitsLayoutError(self.path, f"HDU {table.name} is a {type(table).__name__}, not a table")
        data = table.data
        if data is None or len(data) < 1:
            raise FitsLayoutError(self.path, f"HDU {table.name} has no rows (no PSF zones)")
        names = [name.upper() for name in data.columns.names]
        arrays = [name for name in data.columns.names if np.ndim(data[name][0]) == 2]
        if "XCENTER" not in names or "YCENTER" not in names or not arrays:
            raise FitsLayoutError(
                self.path, f"HDU {table.name} needs XCENTER, YCENTER and a 2-d PSF column; has {names}"
            )
        widths = {key: data[key] for key in ("XWIDTH", "YWIDTH") if key in names}
        return Level2PSF(
            np.asarray(data[arrays[0]]),
            data["XCENTER"],
            data["YCENTER"],
            oversampling=int(table.header.get("OVERSAMP", _EPSF_OVERSAMPLING)),
            origin=self.origin(slices),
            x_widths=widths.get("XWIDTH"),
            y_widths=widths.get("YWIDTH"),
        )

    def read_spectral_lookup(self, slices: Any = None) -> SpectralLookup | None:
        """Read the ``WCS-WAVE`` lookup table (its origin moved to ``slices``); `None` without one.

        Raises
        ------
        FitsLayoutError
            Raised if the table lacks the ``X``, ``Y`` or ``VALUES`` column or they do not agree.
        """
        lookup = self.remember(f"spectral_lookup:{self._image_hdu.index}", self._parse_spectral_lookup)
        return None if lookup is None else replace(lookup, origin=self.origin(slices))

    def _parse_spectral_lookup(self) -> SpectralLookup | None:
        hdu = self._by_name.get(self.wave_hdu_name)
        if hdu is None:
            return None
        if not isinstance(hdu, fits.BinTableHDU):
            raise FitsLayoutError(
                self.path, f"HDU {self.wave_hdu_name} is a {type(hdu).__name__}, not a table"
            )
        names = [name.upper() for name in hdu.columns.names]
        if {"X", "Y", "VALUES"} - set(names) or len(hdu.data) < 1:
            raise FitsLayoutError(
                self.path, f"HDU {self.wave_hdu_name} needs one row with columns X, Y, VALUES; has {names}"
            )
        row = hdu.data[0]
        x, y = np.ravel(row["X"]), np.ravel(row["Y"])
        try:
            values = np.asarray(row["VALUES"], dtype=float).reshape(len(y), len(x), 2)
            values.setflags(write=False)
            return SpectralLookup(x, y, values, origin=self.origin())
        except (SPHERExImageError, ValueError) as err:
            raise FitsLayoutError(self.path, f"HDU {self.wave_hdu_name}: {err}") from err

    def read_wavelength(self, slices: Any = None) -> np.ndarray | None:
        """Return float32 ``(2, rows, columns)`` wavelength and bandwidth maps (micron) of ``slices``,
        computed from ``WCS-WAVE``; `None` without it.
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

    def cutout_planes(self) -> list[Any]:  # noqa: D102
        return [*super().cutout_planes(), self._plane_hdu(self.zodi_hdu_name)]

    def _read_parts(self, slices: tuple[slice, ...] | None, meta: bool = True) -> dict[str, Any]:
        parts = super()._read_parts(slices, meta)
        parts.update(
            zodi=self.read_zodi(slices),
            psf_model=self.read_psf(slices),
            spectral_lookup=self.read_spectral_lookup(slices),
            flag_comments=self.read_flag_comments(),
        )
        return parts
