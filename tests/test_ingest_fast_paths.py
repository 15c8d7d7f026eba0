"""Ingest's fast paths give exactly what the full astropy paths give, and never accept what they refuse.

``check_raw_file`` settles a raw in the simulator's plain layout by its header blocks, the exposure
timespan is computed from ``DATE-OBS`` without astropy's ``Time``, and the footprint of a header without
distortions comes from wcslib alone (issue 15); each is checked here against the path it replaces.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import astropy.units as u
import pytest
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS
from hypothesis import given, settings
from hypothesis import strategies as st
from lsst.daf.butler import Timespan

from spherex.geom import wcs_footprint
from spherex.instrument import FileMetadataError, ObservationMetadata, check_raw_file
from spherex.instrument.observation import sky_footprint
from spherex.instrument.raw_file_check import _check, _check_simple_layout
from spherex.instrument.timespans import observation_timespan

from .bad_fits_corpus import KINDS, write_corpus


def raws(simulated_dir: Path) -> list[Path]:
    return sorted(simulated_dir.glob("sim_exposure_*_array_?.fits"))


def test_fast_check_returns_the_full_readers_headers(simulated_dir: Path) -> None:
    for path in raws(simulated_dir):
        fast = _check_simple_layout(path)
        assert fast is not None, f"{path.name} should take the fast path"
        full = _check(path, str(path))
        assert [h.tostring() for h in fast] == [h.tostring() for h in full]


def test_fast_check_never_accepts_a_file_the_full_check_refuses(tmp_path: Path, simulated_dir: Path) -> None:
    corpus = write_corpus(tmp_path, raws(simulated_dir)[0], count=4 * len(KINDS), seed=7)
    refused = 0
    for bad in corpus:
        try:
            _check(bad.path, str(bad.path))
        except FileMetadataError:
            refused += 1
            assert _check_simple_layout(bad.path) is None, f"{bad.kind}: fast path accepted {bad.path}"
            with pytest.raises(FileMetadataError):
                check_raw_file(bad.path)
    assert refused >= len(corpus) // 2


def test_float_flags_and_extra_planes_take_the_full_path(tmp_path: Path, simulated_dir: Path) -> None:
    with fits.open(raws(simulated_dir)[0]) as hdus:
        hdus["FLAGS"].data = hdus["FLAGS"].data.astype("f4")
        hdus.writeto(tmp_path / "float_flags.fits")
        hdus["FLAGS"].data = hdus["FLAGS"].data.astype("i4")
        hdus.append(fits.ImageHDU(hdus["IMAGE"].data, name="EXTRA"))
        hdus.writeto(tmp_path / "extra.fits")
    assert _check_simple_layout(tmp_path / "float_flags.fits") is None
    with pytest.raises(FileMetadataError, match="FLAGS plane has BITPIX=-32"):
        check_raw_file(tmp_path / "float_flags.fits")
    assert _check_simple_layout(tmp_path / "extra.fits") is None
    primary, image = check_raw_file(tmp_path / "extra.fits")  # accepted by the full check
    assert image["EXTNAME"] == "IMAGE"


@settings(max_examples=300, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime.datetime(2000, 1, 1),
        # Ends stay within 2099: past it ERFA calls the leap-second table's years "dubious", and its
        # and astropy's end times were found 1 s apart (start 2099-12-31 21:39, 8424 s).
        max_value=datetime.datetime(2099, 12, 30, 0, 0, 0),
    ),
    digits=st.sampled_from([0, 1, 3, 6, 9]),
    exposure_time=st.floats(min_value=0.001, max_value=86000.0),
)
def test_timespan_equals_astropys_to_the_nanosecond(start, digits: int, exposure_time: float) -> None:
    iso = start.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        iso += "." + f"{start.microsecond:06d}{start.microsecond % 1000:03d}"[:digits]
    begin = Time(iso, format="isot", scale="utc")
    ours = observation_timespan(iso, exposure_time).nsec
    theirs = Timespan(begin, begin + exposure_time * u.s).nsec
    # The start is exact; astropy adds the exposure time in floating-point days, which can round the
    # end by a nanosecond (ours is the exact sum).
    assert ours[0] == theirs[0] and abs(ours[1] - theirs[1]) <= 1


@pytest.mark.parametrize(
    "iso", ["2016-12-31T23:59:60.5", "2016-12-31T23:59:59.999", "2017-01-01T00:00:00", "2015-06-30T23:59:60"]
)
def test_timespan_across_leap_seconds(iso: str) -> None:
    begin = Time(iso, format="isot", scale="utc")
    assert observation_timespan(iso, 10.0) == Timespan(begin, begin + 10.0 * u.s)


@pytest.mark.parametrize(
    ("iso", "problem"),
    [
        ("2026-02-30T00:00:00", "not an ISO-8601 date"),
        ("2026-01-01T24:00:00", "not an ISO-8601 date"),
        ("2026-01-01T23:59:60", "not an ISO-8601 date"),  # no leap second that day
        ("1999-12-31T23:59:59", "outside 2000-2100"),
        ("yesterday", "not an ISO-8601 date"),
    ],
)
def test_timespan_refuses_bad_dates(iso: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        observation_timespan(iso, 10.0)


def test_wcslib_footprint_equals_astropy_wcs_footprint(simulated_dir: Path) -> None:
    for path in raws(simulated_dir):
        image = fits.getheader(path, "IMAGE")
        shape = (image["NAXIS2"], image["NAXIS1"])
        fast = wcs_footprint(image, shape)
        reference = sky_footprint(WCS(image), shape)
        assert fast is not None
        for ours, theirs in zip(fast.getVertices(), reference.getVertices(), strict=True):
            assert ours.dot(theirs) == pytest.approx(1.0, abs=1e-15)


def test_sip_header_takes_astropys_path(simulated_dir: Path) -> None:
    path = raws(simulated_dir)[0]
    primary, image = fits.getheader(path, 0), fits.getheader(path, "IMAGE")
    image["CTYPE1"], image["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
    image["A_ORDER"], image["B_ORDER"], image["A_2_0"], image["B_0_2"] = 2, 2, 1e-5, -1e-5
    shape = (image["NAXIS2"], image["NAXIS1"])
    assert wcs_footprint(image, shape) is None
    region = ObservationMetadata.from_headers(str(path), primary, image).region
    reference = sky_footprint(WCS(image), shape)
    for ours, theirs in zip(region.getVertices(), reference.getVertices(), strict=True):
        assert ours.dot(theirs) == pytest.approx(1.0, abs=1e-15)
