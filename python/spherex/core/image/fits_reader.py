"""The reader of SPHEREx image FITS files: planes together or one at a time, cutouts, components."""

from __future__ import annotations

__all__ = ["SPHERExImageFitsReader"]

from typing import Any

import numpy as np
from astropy import units as u
from astropy.nddata import NDUncertainty

from ..errors import FitsLayoutError, SPHERExImageError
from ..fits.flags import flags_as_int32, read_flag_defs
from ..fits.header import UNCERTAINTY_TYPES
from ..fits.layout import FitsHdu
from ..fits.pixels import normalize_slices, prefetch_rows
from .header_reader import SPHERExImageHeaderReader


class SPHERExImageFitsReader(SPHERExImageHeaderReader):
    """Read the planes of a SPHEREx image FITS file, together or one at a time.

    See `SPHERExImageHeaderReader` for the parameters, the structure checked on construction and how
    files are read; this class adds the pixel planes, the components and `read_parts`.
    """

    # -- planes -------------------------------------------------------------------------------------------

    def normalize_slices(self, slices: Any) -> tuple[slice, ...] | None:
        """Check a ``slices`` parameter against the image shape.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...] or `slice` or `None`
            Cutout in numpy (row, column) order.

        Returns
        -------
        slices : `tuple` [`slice`, ...] or `None`
            One non-empty forward slice per axis with explicit bounds, or `None` for the whole image.

        Raises
        ------
        SPHERExImageError
            Raised if ``slices`` is not a tuple of slices, selects no pixels or has a negative step.
        """
        if slices is None:
            return None
        return normalize_slices(slices, self._shape, self.path)

    def read_image(self, slices: Any = None) -> np.ndarray:
        """Read the image plane (``slices``: cutout in numpy order; dtype as stored)."""
        return self.read_hdu_pixels(self._image_hdu, self.normalize_slices(slices))

    def read_variance(self, slices: Any = None) -> np.ndarray | None:
        """Read the uncertainty plane as stored (`None` without one); see `read_uncertainty`."""
        hdu = self._planes["variance"]
        return None if hdu is None else self.read_hdu_pixels(hdu, self.normalize_slices(slices))

    def read_uncertainty(self, slices: Any = None) -> NDUncertainty | None:
        """Read the uncertainty plane as an astropy uncertainty.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order; the whole plane if `None`.

        Returns
        -------
        uncertainty : `astropy.nddata.NDUncertainty` or `None`
            `~astropy.nddata.VarianceUncertainty` unless the ``UTYPE`` keyword (``key_uncertainty_type``)
            names another type; its unit is the ``BUNIT`` of the plane unless the image unit was given.
            `None` if the file has no uncertainty plane.
        """
        hdu = self._planes["variance"]
        if hdu is None:
            return None
        array = self.read_hdu_pixels(hdu, self.normalize_slices(slices))
        key = self.options.key_uncertainty_type
        uncertainty_class, unit = self.remember(
            f"uncertainty:{hdu.index}:{key}", lambda: self._uncertainty_type(hdu, key)
        )
        return uncertainty_class(array, unit=None if self.options.unit is not None else unit, copy=False)

    def _uncertainty_type(self, hdu: FitsHdu, key: str) -> tuple[type[NDUncertainty], u.UnitBase | None]:
        utype = hdu.header.get(key, "VarianceUncertainty")
        try:
            uncertainty_class = UNCERTAINTY_TYPES[utype]
        except (KeyError, TypeError):
            raise FitsLayoutError(
                self.path, f"HDU {hdu.name or hdu.index} has unknown uncertainty type {key}={utype!r}"
            ) from None
        try:
            unit = self._parse_unit(hdu.header)
        except FitsLayoutError:
            # The plane's unit follows from the image unit; an unreadable BUNIT here adds nothing.
            unit = None
        return uncertainty_class, unit

    def read_flags(self, slices: Any = None) -> np.ndarray | None:
        """Read the flags plane.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order; the whole plane if `None`.

        Returns
        -------
        flags : `numpy.ndarray` or `None`
            int32 bitmask (narrower integer planes are widened, uint32 reinterpreted bit for bit, an
            integer plane with ``BLANK``, which astropy returns as floats, restored to its integers);
            `None` if the file has no flags plane.

        Raises
        ------
        FitsLayoutError
            Raised if the plane does not hold integers that fit in 32 bits.
        """
        hdu = self._planes["flags"]
        if hdu is None:
            return None
        flags = self.read_hdu_pixels(hdu, self.normalize_slices(slices))
        return flags_as_int32(flags, hdu.header, self.path, hdu.name or str(hdu.index))

    def read_flag_defs(self) -> dict[str, int]:
        """Read the flag definitions (``MP_<NAME>`` keywords of the flags HDU; empty without one)."""
        hdu = self._planes["flags"]
        if hdu is None:
            return {}
        return dict(self.remember(f"flag_defs:{hdu.index}", lambda: read_flag_defs(hdu.header, self.path)))

    def read_psf_kernel(self) -> np.ndarray | None:
        """Read the image's PSF kernel (the ``hdu_psf`` HDU, ``PSFIMAGE``); `None` without one."""
        name = self.options.hdu_psf
        hdu = None if name is None else self.hdu_named(name)
        if hdu is None:
            return None
        if not hdu.is_image:
            raise FitsLayoutError(self.path, f"HDU {name} is a table, not a PSF image")
        return self.read_hdu_pixels(hdu, None)

    def read_mask(self, slices: Any = None) -> np.ndarray | None:
        """Read the mask plane as booleans (`True` = masked); `None` without one."""
        hdu = self._planes["mask"]
        if hdu is None:
            return None
        return self.read_hdu_pixels(hdu, self.normalize_slices(slices)).astype(bool)

    def read_component(self, component: str, slices: Any = None) -> Any:
        """Read one component of the image.

        Parameters
        ----------
        component : `str`
            One of `components`.
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order (ignored by ``metadata``).

        Returns
        -------
        value : `typing.Any`
            The array, WCS or header; `None` for a plane the file does not have.

        Raises
        ------
        KeyError
            Raised if ``component`` is not known.
        """
        if component not in self.components:
            raise KeyError(
                f"{self.path}: unknown SPHEREx image component {component!r}; known: {self.components}"
            )
        with self._reporting_damage():
            return self._read_component(component, slices)

    def _read_component(self, component: str, slices: Any) -> Any:
        match component:
            case "image":
                return self.read_image(slices)
            case "variance":
                return self.read_variance(slices)
            case "flags":
                return self.read_flags(slices)
            case "mask":
                return self.read_mask(slices)
            case "wcs":
                return self.read_wcs(slices)
            case "metadata":
                return self.read_metadata()
        raise KeyError(f"{self.path}: no reader for component {component!r}")

    def read_parts(self, slices: Any = None) -> dict[str, Any]:
        """Read everything needed to build a `~spherex.core.SPHERExImage`.

        Parameters
        ----------
        slices : `tuple` [`slice`, ...], optional
            Cutout in numpy (row, column) order; every plane and the WCS are cut alike.

        Returns
        -------
        parts : `dict` [`str`, `typing.Any`]
            Keyword arguments of the `~spherex.core.SPHERExImage` constructor: ``data``, ``unit``,
            ``uncertainty``, ``flags``, ``flag_defs``, ``mask``, ``wcs`` and ``meta``.
        """
        with self._reporting_damage():
            normalized = self.normalize_slices(slices)
            if normalized is None or not self.is_remote:
                return self._read_parts(normalized)
            # Remotely every plane's rows are asked for at once: one request's latency, not one a plane.
            with self.rows_read_once(self.cutout_planes(), [normalized]):
                return self._read_parts(normalized)

    def read_cutouts(self, boxes: Any) -> list[dict[str, Any]]:
        """Read many cutouts of the image in one pass over the rows they span.

        Parameters
        ----------
        boxes : `~collections.abc.Sequence` [`tuple` [`slice`, ...]]
            Cutouts in numpy (row, column) order, as ``slices`` each.

        Returns
        -------
        parts : `list` [`dict` [`str`, `typing.Any`]]
            As `read_parts` of each box, in the order given.  The pixels of every plain plane are read
            once per merged row range (`~spherex.core.fits.file_reader.FitsFileReader.rows_read_once`);
            headers, WCS, flag definitions and PSF are parsed once for all, and the cutouts share one
            ``meta`` header (as slices of an `~astropy.nddata.NDData` share its meta).

        Raises
        ------
        SPHERExImageError
            Raised if ``boxes`` is not a sequence of cutouts or one of them selects no pixels.
        """
        if isinstance(boxes, slice) or (
            isinstance(boxes, tuple) and any(isinstance(b, slice) for b in boxes)
        ):
            raise SPHERExImageError(
                f"{self.path}: the 'boxes' parameter must be a list of cutouts (tuples of slices), "
                f"not {boxes!r}"
            )
        with self._reporting_damage():
            normalized = [self.normalize_slices(box) for box in boxes]
            with self.rows_read_once(self.cutout_planes(), normalized):
                parts = [self._read_parts(box, meta=False) for box in normalized]
            # One header for the cutouts of one read, as an NDData's slices share its meta.
            meta = self.read_metadata()
            for part in parts:
                part["meta"] = meta
            return parts

    def cutout_planes(self) -> list[FitsHdu | None]:
        """Return the pixel planes a cutout reads (`None` for those the file lacks)."""
        return [self._image_hdu, *self._planes.values()]

    def _read_parts(self, slices: tuple[slice, ...] | None, meta: bool = True) -> dict[str, Any]:
        readers = {
            "data": (self._image_hdu, self.read_image),
            "flags": (self._planes["flags"], self.read_flags),
            "uncertainty": (self._planes["variance"], self.read_uncertainty),
            "mask": (self._planes["mask"], self.read_mask),
        }
        parts: dict[str, Any] = dict.fromkeys(readers)
        if slices is not None and self._fd is not None and self._row_blocks is None:
            plain = [hdu for hdu, _ in readers.values() if hdu is not None and hdu.raw_readable]
            if len(plain) > 1 and all(len(hdu.shape) == 2 for hdu in plain):
                prefetch_rows(self._fd, plain, slices)
        # In file order (IMAGE, FLAGS, VARIANCE as written), so that the kernel's read-ahead serves.
        for key, (hdu, read) in sorted(readers.items(), key=lambda item: _position(item[1][0])):
            if hdu is not None:
                parts[key] = read(slices)
        parts.update(
            psf=self.read_psf_kernel(),
            unit=self.read_unit(),
            flag_defs=self.read_flag_defs(),
            wcs=self.read_wcs(slices),
            meta=self.read_metadata() if meta else None,
        )
        return parts

    # -- helpers ------------------------------------------------------------------------------------------


def _position(hdu: FitsHdu | None) -> int:
    return -1 if hdu is None else hdu.index
