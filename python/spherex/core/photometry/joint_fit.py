"""Joint forced PSF photometry: every catalogue source near a target fitted together with it.

With SPHEREx's 6.15 arcsec pixels a second source within ~3 pixels adds its flux to a single-source PSF
fit (issue 22: an equal source 1 pixel away makes the fit read 1.5 times the truth).  The remedy is that
of IRSA's Spectrophotometry Tool (Tractor): fit all catalogue sources together.  Positions are fixed, so
the model of a target's box is linear in its unknowns,

    ``data = sum_k amplitude_k * stamp_k + background``,

with one PSF amplitude per source (the target and every catalogue neighbour whose PSF reaches into the
box) and one constant background, solved by variance-weighted linear least squares.  The reduced
chi-square of the fit tells an unmodelled neighbour (one not in the catalogue) from noise.

`fit_joint_psf_fluxes` is the solver; `neighbour_design` places the neighbours' stamps (each computed
once per cutout with `~spherex.core.photometry.psf_model.psf_stamp`) on a target's box.
"""

from __future__ import annotations

__all__ = ["fit_joint_psf_fluxes", "fit_psf_flux", "neighbour_design"]

import math
from collections.abc import Sequence

import numpy as np
from lsst.pipe.base import Struct


def neighbour_design(
    box: tuple[slice, slice],
    stamps: Sequence[np.ndarray],
    boxes: Sequence[tuple[slice, slice]],
    candidates: Sequence[int],
    min_fraction: float,
) -> tuple[np.ndarray, list[int]]:
    """Return the stamps of a target's neighbours on the target's box.

    Parameters
    ----------
    box : `tuple` [`slice`, `slice`]
        (rows, columns) of the target's fit box in the cutout.
    stamps, boxes : `~collections.abc.Sequence`
        Every source's PSF stamp and the box of the cutout it covers (`psf_stamp`).
    candidates : `~collections.abc.Sequence` [`int`]
        Indices of the sources that may reach the box (the target itself excluded).
    min_fraction : `float`
        A neighbour whose stamp puts less than this fraction of its flux in the box is left out: its
        amplitude cannot be told from the background there, and its light in the box is negligible.

    Returns
    -------
    design : `numpy.ndarray`
        ``(n, rows, columns)``: the kept neighbours' stamps on the box (zero where their stamp ends).
    kept : `list` [`int`]
        Indices (into ``stamps``) of the kept neighbours, in the order of ``design``.
    """
    rows, columns = box
    shape = (rows.stop - rows.start, columns.stop - columns.start)
    planes, kept = [], []
    for j in candidates:
        other_rows, other_columns = boxes[j]
        r0, r1 = max(rows.start, other_rows.start), min(rows.stop, other_rows.stop)
        c0, c1 = max(columns.start, other_columns.start), min(columns.stop, other_columns.stop)
        if r1 <= r0 or c1 <= c0:
            continue
        part = stamps[j][
            r0 - other_rows.start : r1 - other_rows.start, c0 - other_columns.start : c1 - other_columns.start
        ]
        if part.sum() < min_fraction:
            continue
        plane = np.zeros(shape)
        plane[r0 - rows.start : r1 - rows.start, c0 - columns.start : c1 - columns.start] = part
        planes.append(plane)
        kept.append(j)
    return (np.stack(planes) if planes else np.zeros((0, *shape))), kept


def fit_joint_psf_fluxes(
    data: np.ndarray,
    variance: np.ndarray,
    stamps: np.ndarray,
    good: np.ndarray | None = None,
) -> Struct:
    """Fit ``sum_k amplitude_k * stamps[k] + background`` by variance-weighted linear least squares.

    Parameters
    ----------
    data, variance : `numpy.ndarray`
        Pixel values and their variances, shape ``(rows, columns)``.
    stamps : `numpy.ndarray`
        ``(n_sources, rows, columns)``: the PSF of each source on the same pixels, each summing to 1 over
        an unbounded grid; ``stamps[0]`` is the target's.
    good : `numpy.ndarray`, optional
        Pixels to use; non-finite values and non-positive variances are always left out.

    Returns
    -------
    fit : `lsst.pipe.base.Struct`
        ``amplitudes`` and ``amplitude_errors`` (`numpy.ndarray`, one per source: image unit times
        pixels, the PSF's total; errors from the covariance, so they include what sharing the light with
        a close neighbour costs), ``amplitude`` and ``amplitude_err`` (the target's), ``background``
        (image unit), ``reduced_chi2`` (chi-square per degree of freedom of the fit), ``psf_fraction``
        (the target's stamp summed over the pixels used), ``n_pixels``.  NaN amplitudes and chi-square
        when there are not more usable pixels than unknowns or the sources cannot be told apart.
    """
    stamps = np.asarray(stamps, dtype=float)
    n_sources = stamps.shape[0]
    use = np.isfinite(data) & np.isfinite(variance) & (variance > 0) & np.all(np.isfinite(stamps), axis=0)
    if good is not None:
        use &= good
    n = int(use.sum())
    fraction = float(stamps[0][use].sum()) if n else 0.0
    n_unknowns = n_sources + 1
    nan = Struct(
        amplitudes=np.full(n_sources, math.nan),
        amplitude_errors=np.full(n_sources, math.nan),
        amplitude=math.nan,
        amplitude_err=math.nan,
        background=math.nan,
        reduced_chi2=math.nan,
        psf_fraction=fraction,
        n_pixels=n,
    )
    if n <= n_unknowns:
        return nan
    weight = 1.0 / variance[use]
    design = np.concatenate([stamps[:, use], np.ones((1, n))])  # (unknowns, pixels)
    values = data[use]
    normal = (design * weight) @ design.T
    scale = np.sqrt(np.diag(normal))
    if not np.all(scale > 0):
        return nan
    # Scaled to a unit diagonal, the normal matrix's condition number says whether two sources (or a
    # source and the background) are degenerate; 1e10 leaves errors of ~1e5 times the isolated ones.
    scaled = normal / np.outer(scale, scale)
    if not np.linalg.cond(scaled) < 1e10:
        return nan
    covariance = np.linalg.inv(scaled) / np.outer(scale, scale)
    solution = covariance @ ((design * weight) @ values)
    residual = values - solution @ design
    chi2 = float(np.sum(weight * residual**2))
    errors = np.sqrt(np.diag(covariance))
    return Struct(
        amplitudes=solution[:n_sources],
        amplitude_errors=errors[:n_sources],
        amplitude=float(solution[0]),
        amplitude_err=float(errors[0]),
        background=float(solution[-1]),
        reduced_chi2=chi2 / (n - n_unknowns),
        psf_fraction=fraction,
        n_pixels=n,
    )


def fit_psf_flux(
    data: np.ndarray, variance: np.ndarray, stamp: np.ndarray, good: np.ndarray | None = None
) -> Struct:
    """Fit ``amplitude * stamp + background`` to pixels: `fit_joint_psf_fluxes` of one source.

    Parameters
    ----------
    data, variance : `numpy.ndarray`
        Pixel values and their variances.
    stamp : `numpy.ndarray`
        The PSF on the same pixels, summing to 1 over an unbounded grid.
    good : `numpy.ndarray`, optional
        Pixels to use; non-finite values and non-positive variances are always left out.

    Returns
    -------
    fit : `lsst.pipe.base.Struct`
        As `fit_joint_psf_fluxes`: ``amplitude``, ``amplitude_err``, ``background``, ``reduced_chi2``,
        ``psf_fraction``, ``n_pixels``; NaN amplitude when fewer than 3 pixels are usable or the PSF and
        background cannot be told apart.
    """
    return fit_joint_psf_fluxes(data, variance, np.asarray(stamp, dtype=float)[None], good)
