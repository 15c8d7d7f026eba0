"""Level-2 files built from the cards IRSA's tutorials print (``tests/data/level2_*.hdr``).

A fixture holds FITS cards by HDU (``[IMAGE]`` ...), each card either printed by IRSA's tutorials or
marked ``# MADE UP: why`` / ``# FROM: what``, and ``@NAME = values`` lines for printed table data.  Pixels
are made up.  Full-array fixtures become IRSA-style cutouts (a small piece of the 2040 x 2040 array, with
IRSA's ``CRPIX1A``/``CRPIX2A``), so that whole-array facts (PSF zones, wavelength nodes) stay true.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from astropy.io import fits

DATA = Path(__file__).parent / "data"
QR1_FILE = "level2_2025W20_1C_0272_1D6_spx_l2b-v12-2025-175"
QR2_FILE = "level2_2025W43_1A_0516_1D5_spx_l2b-v20-2025-299"
QR2_CUTOUT = "level2_2025W18_1B_0023_2D4_spx_l2b-v20-2025-240_cutout"
QR2_CUTOUT_FIXED = QR2_CUTOUT + "_psffix1"

# The pattern of the printed PSF zone cards (to their 8 decimals): zone i of an axis is centred at
# (i + 0.5) * 2040 / 11 + 0.5 (93.22727273, 278.68181818, ...), 2040 / 11 + 1 wide for i = 0 and 2040 / 11
# after (186.45454546, 185.45454545, ...).
ZONES = 11
ZONE_CENTRES = (np.arange(ZONES) + 0.5) * 2040 / ZONES + 0.5
ZONE_WIDTHS = np.where(np.arange(ZONES) == 0, 2040 / ZONES + 1, 2040 / ZONES)


def read_fixture(name: str) -> tuple[dict[str, fits.Header], dict[str, list[str]]]:
    """Return the headers by HDU name and the ``@`` data lines of a fixture."""
    sections: dict[str, fits.Header] = {}
    data: dict[str, list[str]] = {}
    current = None
    for line in (DATA / f"{name}.hdr").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("@"):
            key, _, values = line[1:].partition("=")
            data[key.strip()] = values.split()
        elif line.startswith("["):
            current = sections.setdefault(line.strip("[]"), fits.Header())
        else:
            card = re.split(r"\s{2,}# (?:MADE UP|FROM):", line)[0]
            current.append(fits.Card.fromstring(card.ljust(80)[:80]))
    return sections, data


def zone_cards(order: str) -> list[fits.Card]:
    """Return the 484 zone cards of a 121-plane PSF, labelled ``x-fast`` (fixed) or ``y-fast`` (QR1/QR2
    before IRSA's fix), comments as printed."""
    cards = []
    for k0 in range(ZONES * ZONES):
        ix, iy = (k0 % ZONES, k0 // ZONES) if order == "x-fast" else (k0 // ZONES, k0 % ZONES)
        zone, k = f"({ix}, {iy})", k0 + 1
        cards += [
            fits.Card(f"XCTR_{k}", float(ZONE_CENTRES[ix]), f"Center of x zone {zone}"),
            fits.Card(f"YCTR_{k}", float(ZONE_CENTRES[iy]), f"Center of y zone {zone}"),
            fits.Card(f"XWID_{k}", float(ZONE_WIDTHS[ix]), f"Width of x zone {zone}"),
            fits.Card(f"YWID_{k}", float(ZONE_WIDTHS[iy]), f"Width of y zone {zone}"),
        ]
    return cards


def _wave_table(data: dict[str, list[str]], header: fits.Header) -> fits.BinTableHDU:
    x = np.array(data["X"], dtype=np.int32)
    y = np.array(data["Y"], dtype=np.int32)
    corners = {key: np.array(data[f"{key}_CORNERS"], dtype=float) for key in ("WAVELENGTH", "BANDWIDTH")}
    # Printed: the four corner nodes.  MADE UP: the nodes between them, bilinear in node position.
    t = ((x - x[0]) / (x[-1] - x[0]))[None, :]
    s = ((y - y[0]) / (y[-1] - y[0]))[:, None]
    planes = [
        (1 - s) * ((1 - t) * c[0] + t * c[1]) + s * ((1 - t) * c[2] + t * c[3]) for c in corners.values()
    ]
    values = np.stack(planes, axis=-1).astype(np.float32)
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="X", format=f"{len(x)}J", dim=f"({len(x)})", array=x[None]),
            fits.Column(name="Y", format=f"{len(y)}J", dim=f"({len(y)})", array=y[None]),
            fits.Column(
                name="VALUES", format=f"{values.size}E", dim=f"(2,{len(x)},{len(y)})", array=values[None]
            ),
        ],
        name="WCS-WAVE",
    )
    for card in header.cards:
        table.header[card.keyword] = (card.value, card.comment)
    return table


def fixture_file(
    name: str,
    path: Path,
    shape: tuple[int, int] = (6, 6),
    origin: tuple[int, int] = (0, 0),
    psf: str | None = None,
    psf_size: int = 15,
) -> Path:
    """Write a Level-2 file from a fixture.

    Parameters
    ----------
    name : `str`
        Fixture name (``tests/data/<name>.hdr``).
    path : `pathlib.Path`
        File to write.
    shape : `tuple` [`int`, `int`]
        Pixels (rows, columns): the cutout's as printed, or a made-up piece of a full-array fixture.
    origin : `tuple` [`int`, `int`]
        0-based (x, y) on the full array of the piece's pixel (0, 0), for full-array fixtures.
    psf : `str`, optional
        Add the 121 zone cards labelled ``x-fast`` or ``y-fast`` (default: the fixture's ``@PSF_LABELS``).
    psf_size : `int`
        Side of each PSF plane (made up; plane ``k`` holds the value ``k``).
    """
    sections, data = read_fixture(name)
    image_header = sections["IMAGE"].copy()
    if "CRPIX1A" not in image_header:
        # A piece of the full array as IRSA's cutout service writes it (MADE UP for full-array fixtures).
        image_header["CRPIX1"] -= origin[0]
        image_header["CRPIX2"] -= origin[1]
        image_header["CRPIX1A"], image_header["CRPIX2A"] = 1.0 - origin[0], 1.0 - origin[1]
        image_header["CRVAL1A"] = image_header["CRVAL2A"] = 0.0
    rng = np.random.default_rng(1)
    flags = np.zeros(shape, np.int32)
    flags[min(3, shape[0] - 1), min(4, shape[1] - 1)] = 1 << 21
    hdus: list = [
        fits.PrimaryHDU(header=sections.get("PRIMARY")),
        fits.ImageHDU(rng.normal(1.0, 0.1, shape).astype(np.float32), image_header, name="IMAGE"),
        fits.ImageHDU(flags, sections["FLAGS"], name="FLAGS"),
        fits.ImageHDU(np.full(shape, 0.01, np.float32), sections.get("VARIANCE"), name="VARIANCE"),
        fits.ImageHDU(np.full(shape, 0.4, np.float32), sections.get("ZODI"), name="ZODI"),
    ]
    labels = psf or (data["PSF_LABELS"][0] if "PSF_LABELS" in data else None)
    if labels is not None:
        header = sections["PSF"].copy()
        header["OVERSAMP"] = header.get("OVERSAMP", 10)
        header.extend(zone_cards(labels), update=True)
        cube = np.arange(ZONES * ZONES, dtype=np.float32)[:, None, None] * np.ones((psf_size, psf_size))
        hdus.append(fits.ImageHDU(cube.astype(np.float32), header, name="PSF"))
    if "X" in data:
        hdus.append(_wave_table(data, sections["WCS-WAVE"]))
    fits.HDUList(hdus).writeto(path)
    return path


def irsa_zone(path: Path, x_cutout: float | np.ndarray, y_cutout: float | np.ndarray) -> int | np.ndarray:
    """IRSA's PSF recipe with plain astropy, as a user of the PSF tutorial runs it: correct the header when
    the PRIMARY ``VERSION`` says so, map the cutout pixel to the parent with ``CRPIX1A``/``CRPIX2A``, take
    the nearest zone centre; return IRSA's zone number ``k`` (plane ``k - 1``), for each position."""
    with fits.open(path) as hdul:
        version = str(hdul["PRIMARY"].header.get("VERSION", ""))
        public, _, local = version.partition("+")
        parts = tuple(int(p) for p in public.split(".")) if public else ()
        fixed = "psffix1" in local or (parts + (0, 0, 0))[:3] >= (6, 5, 6)
        header = hdul["PSF"].header
        image = hdul["IMAGE"].header
        centres = {}
        for key, value in header.items():
            match = re.match(r"([XY])CTR_(\d+)$", key)
            if match:
                centres.setdefault(int(match.group(2)), {})[match.group(1)] = value
        if not fixed:
            # The notice's correction: the "(ix, iy)" of a label's comment is its zone; x-fast storage puts
            # that zone in plane iy * ncols + ix.
            zones = {k: tuple(map(int, re.findall(r"\d+", header.comments[f"XCTR_{k}"]))) for k in centres}
            ncols = max(ix for ix, _ in zones.values()) + 1
            centres = {zones[k][1] * ncols + zones[k][0] + 1: centres[k] for k in centres}
        x = 1 + np.asarray(x_cutout, float) - image["CRPIX1A"]
        y = 1 + np.asarray(y_cutout, float) - image["CRPIX2A"]
    keys = np.array(sorted(centres))
    cx = np.array([centres[k]["X"] for k in keys])
    cy = np.array([centres[k]["Y"] for k in keys])
    nearest = keys[np.argmin((cx - x[..., None]) ** 2 + (cy - y[..., None]) ** 2, axis=-1)]
    return int(nearest) if nearest.ndim == 0 else nearest
