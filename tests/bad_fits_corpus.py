"""A generated corpus of bad SPHEREx raw files, for the bad-input tests and benchmark.

Every bad file is made from the bytes of one good simulated raw by editing header cards in place,
overwriting pixel bytes, cutting HDUs or truncating, so that a corpus of a thousand files is written in
well under a second.  Each file is named like a simulated raw (``sim_exposure_<id>_array_<d>.fits``) with
an exposure id of its own, so that ingest sees every file as a separate exposure.
"""

from __future__ import annotations

__all__ = ["BadFile", "KINDS", "write_corpus"]

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits

CARD = 80
BLOCK = 2880


@dataclass(frozen=True)
class BadFile:
    """One bad file of the corpus."""

    path: Path
    kind: str
    """What is wrong with it (a key of `KINDS`)."""
    expected: str
    """Regular expression the ingest error must match."""
    structural: bool
    """Whether a plain FITS reader must also refuse it (header-value problems are readable FITS)."""


@dataclass(frozen=True)
class _Layout:
    """Byte ranges of the HDUs of the template file."""

    data: bytes
    hdus: list[tuple[str, int, int, int]]
    """(EXTNAME, header start, data start, end of padded data) per HDU."""

    @classmethod
    def of(cls, path: Path) -> _Layout:
        data = path.read_bytes()
        hdus = []
        with fits.open(path) as hdul:
            for hdu in hdul:
                info = hdu.fileinfo()
                span = info["datSpan"]
                hdus.append((hdu.name, info["hdrLoc"], info["datLoc"], info["datLoc"] + span))
        return cls(data, hdus)

    def index(self, name: str) -> int:
        return [h[0] for h in self.hdus].index(name)


def _card(keyword: str, value: str) -> bytes:
    """Return a raw 80-byte card; ``value`` is written as given (so it can be malformed)."""
    return f"{keyword:<8}= {value:>20}".ljust(CARD)[:CARD].encode("ascii")


def _string(value: str) -> str:
    return "'" + value.replace("'", "''").ljust(8) + "'"


def _set_card(data: bytearray, layout: _Layout, hdu: str, keyword: str, value: str | None) -> None:
    """Replace (or, with `None`, blank out) the card ``keyword`` in the header of ``hdu``."""
    _, start, end, _ = layout.hdus[layout.index(hdu)]
    for offset in range(start, end, CARD):
        if data[offset : offset + 8].decode("ascii").rstrip() == keyword:
            data[offset : offset + CARD] = b" " * CARD if value is None else _card(keyword, value)
            return
    raise KeyError(f"{keyword} not in HDU {hdu} of the template")


def _fill_plane(data: bytearray, layout: _Layout, hdu: str, value: bytes) -> None:
    """Overwrite every pixel of a float32 plane with the 4-byte big-endian pattern ``value``."""
    _, _, start, end = layout.hdus[layout.index(hdu)]
    with fits.open(_BytesPath(layout.data)) as hdul:
        size = hdul[hdu].data.size * 4
    data[start : start + size] = value * (size // 4)


class _BytesPath:
    """Let astropy open bytes held in memory."""

    def __new__(cls, data: bytes):  # noqa: D102
        import io

        return io.BytesIO(data)


_UNREADABLE = r"truncated|not a readable FITS|corrupt|damaged"
NAN = b"\x7f\xc0\x00\x00"
INF = b"\x7f\x80\x00\x00"

_Maker = Callable[[_Layout, random.Random], tuple[bytes, str]]


def _header(hdu: str, keyword: str, values: list[str | None], expected: str) -> _Maker:
    def make(layout: _Layout, rng: random.Random) -> tuple[bytes, str]:
        data = bytearray(layout.data)
        _set_card(data, layout, hdu, keyword, rng.choice(values))
        return bytes(data), expected

    return make


def _truncated(layout: _Layout, rng: random.Random) -> tuple[bytes, str]:
    # Anywhere from the first byte to one byte short: a broken header or missing pixels.
    return layout.data[
        : rng.randrange(0, len(layout.data) - 1)
    ], r"truncated|not a readable FITS|corrupt|damaged|HDU"


def _random_bytes(layout: _Layout, rng: random.Random) -> tuple[bytes, str]:
    return rng.randbytes(rng.randrange(0, 3 * BLOCK)), _UNREADABLE + "|no HDU"


def _fits_then_garbage(layout: _Layout, rng: random.Random) -> tuple[bytes, str]:
    head = _card("SIMPLE", "T")
    return head + rng.randbytes(
        rng.randrange(0, 2 * BLOCK)
    ), r"not a readable FITS|no HDU|corrupt|damaged|truncated"


def _drop(hdu: str) -> _Maker:
    def make(layout: _Layout, rng: random.Random) -> tuple[bytes, str]:
        _, start, _, end = layout.hdus[layout.index(hdu)]
        expected = f"missing the {hdu} plane" if hdu != "IMAGE" else r"no IMAGE HDU|missing the IMAGE plane"
        return layout.data[:start] + layout.data[end:], expected

    return make


def _plane(hdu: str, pattern: bytes) -> _Maker:
    def make(layout: _Layout, rng: random.Random) -> tuple[bytes, str]:
        data = bytearray(layout.data)
        _fill_plane(data, layout, hdu, pattern)
        return bytes(data), f"the {hdu} plane has no finite pixel"

    return make


def _shape(layout: _Layout, rng: random.Random) -> tuple[bytes, str]:
    # A plane of the same number of pixels as IMAGE but another shape: the bytes of every HDU stay where
    # they were, only the shapes disagree.
    data = bytearray(layout.data)
    hdu = rng.choice(["FLAGS", "VARIANCE"])
    with fits.open(_BytesPath(layout.data)) as hdul:
        rows, columns = hdul[hdu].header["NAXIS2"], hdul[hdu].header["NAXIS1"]
    pixels = rows * columns
    other = rng.choice([c for c in range(1, pixels + 1) if pixels % c == 0 and c != columns])
    _set_card(data, layout, hdu, "NAXIS1", str(other))
    _set_card(data, layout, hdu, "NAXIS2", str(pixels // other))
    return bytes(data), r"shape"


def _huge(layout: _Layout, rng: random.Random) -> tuple[bytes, str]:
    # 10^12 pixels (4 TB) claimed by a file of a few kB: must be refused before anything is allocated.
    data = bytearray(layout.data)
    hdu = rng.choice(["IMAGE", "FLAGS", "VARIANCE"])
    _set_card(data, layout, hdu, "NAXIS1", "1000000")
    _set_card(data, layout, hdu, "NAXIS2", "1000000")
    return bytes(data), r"truncated"


KINDS: dict[str, tuple[_Maker, bool]] = {
    # kind: (maker, structural)
    "truncated": (_truncated, True),
    "random_bytes": (_random_bytes, True),
    "fits_then_garbage": (_fits_then_garbage, True),
    "bitpix_invalid": (
        _header(
            "IMAGE", "BITPIX", ["12", "0", "-16", "7", "'abc'", "1e3"], r"BITPIX|not a readable FITS|corrupt"
        ),
        True,
    ),
    "flags_float": (_header("FLAGS", "BITPIX", ["-32"], r"FLAGS plane has BITPIX=-32"), False),
    "image_all_nan": (_plane("IMAGE", NAN), False),
    "image_all_inf": (_plane("IMAGE", INF), False),
    "variance_all_nan": (_plane("VARIANCE", NAN), False),
    "missing_image": (_drop("IMAGE"), True),
    "missing_flags": (_drop("FLAGS"), False),
    "missing_variance": (_drop("VARIANCE"), False),
    "mismatched_shape": (_shape, True),
    "huge_naxis": (_huge, True),
    "naxis_3d": (_header("IMAGE", "NAXIS", ["3"], r"not a 2-d image|corrupt|damaged|NAXIS|truncated"), True),
    "exptime_not_numeric": (
        _header("PRIMARY", "EXPTIME", [_string("abc"), _string("113.6s"), _string("")], r"EXPTIME"),
        False,
    ),
    "exptime_out_of_range": (
        _header("PRIMARY", "EXPTIME", ["0", "-5.0", "1E9"], r"EXPTIME=.* not a plausible"),
        False,
    ),
    "exptime_missing": (_header("PRIMARY", "EXPTIME", [None], "missing header keyword EXPTIME"), False),  # type: ignore[list-item]
    "date_out_of_range": (
        _header(
            "PRIMARY",
            "DATE-OBS",
            [_string("1850-01-01T00:00:00"), _string("2500-06-01T00:00:00"), _string("0001-01-01T00:00:00")],
            r"DATE-OBS=.* is outside 2000-2100",
        ),
        False,
    ),
    "date_not_a_date": (
        _header(
            "PRIMARY",
            "DATE-OBS",
            [_string("yesterday"), _string("2025-13-45T00:00:00"), "12345", _string("")],
            r"DATE-OBS|missing header keyword DATE-OBS",
        ),
        False,
    ),
    "obsid_path": (
        _header(
            "PRIMARY",
            "OBSID",
            [_string("../../etc"), _string("a/b"), _string(".."), _string("/abs"), _string("x..y")],
            r"OBSID .* not allowed",
        ),
        False,
    ),
    "groupnam_path": (
        _header(
            "PRIMARY",
            "GROUPNAM",
            [_string("../../x"), _string("a/b"), _string("..")],
            r"GROUPNAM .* not allowed",
        ),
        False,
    ),
    "detector_out_of_range": (
        _header("PRIMARY", "DETECTOR", ["7", "0", "-1"], r"file name says detector|DETECTOR"),
        False,
    ),
    "wcs_garbage": (
        _header("IMAGE", "CTYPE1", [_string("FOO"), _string("RA---XXX"), _string("")], r"WCS"),
        False,
    ),
}
"""Every kind of bad file: a maker of (bytes, expected ingest error) and whether it is structural."""


def write_corpus(outdir: Path, template: Path, count: int = 1000, seed: int = 0) -> list[BadFile]:
    """Write ``count`` bad files, cycling through `KINDS`, into ``outdir``.

    Parameters
    ----------
    outdir : `pathlib.Path`
        Directory to write into (created).
    template : `pathlib.Path`
        A good simulated raw (array ``d``: the bad files keep its detector number).
    count : `int`, optional
        Number of files.
    seed : `int`, optional
        Random seed: the corpus is reproducible.

    Returns
    -------
    corpus : `list` [`BadFile`]
        The files written.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    layout = _Layout.of(template)
    detector = int(re.search(r"_array_(\d)", template.name).group(1))
    rng = random.Random(seed)
    corpus = []
    kinds = list(KINDS)
    for index in range(count):
        kind = kinds[index % len(kinds)]
        maker, structural = KINDS[kind]
        exposure = 100000 + index
        # The header agrees with the file name, so that each file fails for its own defect only.
        base = bytearray(layout.data)
        _set_card(base, layout, "PRIMARY", "EXPID", str(exposure))
        data, expected = maker(_Layout(bytes(base), layout.hdus), rng)
        path = outdir / f"sim_exposure_{exposure:06d}_array_{detector}.fits"
        path.write_bytes(data)
        corpus.append(BadFile(path, kind, expected, structural))
    return corpus
