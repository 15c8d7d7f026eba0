"""Components and cutouts from an S3 datastore fetch only the bytes they need (``range_reads``).

Every request the S3 client sends is counted, with the bytes its ``Range`` header asks for (a GET without
one fetches the whole object), and the server's own request log is checked too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from lsst.resources import ResourcePath
from lsst.resources.s3utils import getS3Client

from spherex.formatters.range_reads import DEFAULT_RANGE_BUFFER_SIZE, open_byte_ranges
from spherex.script import ingest_simulated

from .backend_repos import make_backend_repo

SIZE = 512


class RequestCounter:
    """Count the S3 requests of this process and the bytes each GET fetches."""

    def __init__(self, object_size: int) -> None:
        self.object_size = object_size
        self.requests: list[tuple[str, int]] = []

    def __call__(self, request, **kwargs) -> None:
        fetched = 0
        if request.method == "GET":
            header = request.headers.get("Range")
            if header is None:
                fetched = self.object_size
            else:
                first, _, last = (header.decode() if isinstance(header, bytes) else header)[6:].partition("-")
                fetched = (int(last) if last else self.object_size - 1) - int(first) + 1
        self.requests.append((request.method, fetched))

    @property
    def bytes(self) -> int:
        return sum(n for _, n in self.requests)


@pytest.fixture
def s3_repo(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """A sqlite + S3 repository holding the raws of one 512x512 exposure."""
    from spherex.simulator import simulate

    simulate(tmp_path / "sim", exposures=1, size=SIZE, seed=7)
    b = make_backend_repo(("sqlite", "s3"), tmp_path, request, monkeypatch)
    assert ingest_simulated(b.repo, [str(tmp_path / "sim")], transfer="copy").ok
    # Each process keeps its own datastore cache: start empty so that nothing is read from it.
    monkeypatch.setenv("DAF_BUTLER_CACHE_DIRECTORY", str(tmp_path / "cache"))
    return b


def counted(uri: ResourcePath) -> RequestCounter:
    counter = RequestCounter(uri.size())
    getS3Client().meta.events.register("before-send.s3", counter)
    return counter


def test_component_and_cutout_read_only_their_bytes(s3_repo, request: pytest.FixtureRequest) -> None:
    s3 = request.getfixturevalue("s3_server")
    local = fits.open(s3_repo.workdir / "sim" / "sim_exposure_000000_array_2.fits")
    data_id = {"instrument": "simulator", "exposure": 0, "detector": 2}
    with s3_repo.butler(collections="rawexpr") as butler:
        uri = butler.getURI("rawexp", data_id)
        assert uri.scheme == "s3"
        counter = counted(uri)
        size = counter.object_size
        plane = SIZE * SIZE * 4
        assert size > 3 * plane  # image, variance and flags planes

        log_before = len(s3.request_log())
        variance = butler.get("rawexp.variance", data_id)
        np.testing.assert_array_equal(variance, local["VARIANCE"].data)
        # The variance plane and the headers: one third of the file, in a handful of requests.
        assert plane <= counter.bytes < plane + 200_000, counter.requests
        assert len(counter.requests) <= 6, counter.requests
        assert len(s3.request_log()) - log_before == len(counter.requests)  # the server saw the same

        counter.requests.clear()
        cutout = butler.get("rawexp", data_id, parameters={"slices": (slice(100, 132), slice(200, 232))})
        np.testing.assert_array_equal(cutout.data, local["IMAGE"].data[100:132, 200:232])
        np.testing.assert_array_equal(cutout.flags, local["FLAGS"].data[100:132, 200:232])
        np.testing.assert_array_equal(cutout.uncertainty.array, local["VARIANCE"].data[100:132, 200:232])
        # One request of exactly the 32 rows of each plane (all three in flight at once); the headers
        # were read with the variance (once per process).  The rows outside the cutout are never fetched.
        assert counter.requests == [("GET", 32 * SIZE * 4)] * 3
        assert counter.bytes < size / 16

        counter.requests.clear()
        wcs = butler.get("rawexp.wcs", data_id)
        assert wcs.wcs.ctype[0].startswith("RA")
        # From the headers already read: no request at all.
        assert counter.requests == []

        # The whole image is downloaded once (one GET of the whole object) and cached.
        counter.requests.clear()
        image = butler.get("rawexp", data_id)
        np.testing.assert_array_equal(image.data, local["IMAGE"].data)
        assert ("GET", size) in counter.requests
        counter.requests.clear()
        butler.get("rawexp", data_id)
        butler.get("rawexp.variance", data_id)
        assert not any(method == "GET" for method, _ in counter.requests)  # from the local cache


def test_open_byte_ranges_reads_like_a_file(s3_repo) -> None:
    with s3_repo.butler(collections="rawexpr") as butler:
        uri = butler.getURI("rawexp", {"instrument": "simulator", "exposure": 0, "detector": 1})
    expected = (s3_repo.workdir / "sim" / "sim_exposure_000000_array_1.fits").read_bytes()
    with open_byte_ranges(uri) as stream:
        assert stream.name == str(uri)
        assert stream.seek(0, 2) == len(expected)
        stream.seek(2880 * 3 + 5)
        assert stream.read(100) == expected[2880 * 3 + 5 : 2880 * 3 + 105]
        stream.seek(-10, 2)
        assert stream.read() == expected[-10:]
        stream.seek(0)
        assert stream.read() == expected
    missing = uri.parent().join("missing.fits")
    with pytest.raises(FileNotFoundError), open_byte_ranges(missing) as stream:
        stream.read(10)


@pytest.mark.parametrize("merge_bytes", [1024 * 1024, 0])
def test_cutouts_of_many_targets_are_one_request_per_row_range_and_plane(
    s3_repo, monkeypatch: pytest.MonkeyPatch, merge_bytes: int
) -> None:
    from spherex.core.fits import file_reader

    monkeypatch.setattr(file_reader, "REMOTE_MERGE_BYTES", merge_bytes)
    local = fits.open(s3_repo.workdir / "sim" / "sim_exposure_000000_array_3.fits")
    data_id = {"instrument": "simulator", "exposure": 0, "detector": 3}
    # Twelve 11x11 boxes over rows 100-140 (one merged range of 40 rows: 80 KiB a plane, more than a
    # block), and three over rows 400-411.
    boxes = [(slice(100 + 3 * i, 111 + 3 * i), slice(30 * i, 30 * i + 11)) for i in range(10)]
    boxes += [(slice(129, 140), slice(500, 511)), (slice(100, 111), slice(0, 11))]
    boxes += [(slice(400, 411), slice(40 * i, 40 * i + 11)) for i in range(3)]
    with s3_repo.butler(collections="rawexpr") as butler:
        ref = butler.find_dataset("rawexp", data_id)
        counter = counted(butler.getURI(ref))
        cutouts = butler.get(ref.makeComponentRef("cutouts"), parameters={"boxes": boxes})
        requests = list(counter.requests)
        for box, cutout in zip(boxes, cutouts, strict=True):
            np.testing.assert_array_equal(cutout.data, local["IMAGE"].data[box])
            np.testing.assert_array_equal(cutout.flags, local["FLAGS"].data[box])
            np.testing.assert_array_equal(cutout.uncertainty.array, local["VARIANCE"].data[box])
        counter.requests.clear()
        for box in boxes:
            butler.get(ref, parameters={"slices": box})
    row_bytes = SIZE * 4
    gets = sorted(n for method, n in requests if method == "GET")
    if merge_bytes:
        # Rows 300 apart (600 KiB) within a 1 MiB merge gap: per plane, one request for rows
        # 100-411, after the three header blocks.
        assert gets == sorted([DEFAULT_RANGE_BUFFER_SIZE] * 3 + [311 * row_bytes] * 3), requests
    else:
        # Unmerged: per plane one request of exactly the 40 rows' bytes and one of the 11 rows' (fetched
        # at once): nine requests for fifteen cutouts, where separate gets send three each (one a plane,
        # the headers already read).
        expected = [DEFAULT_RANGE_BUFFER_SIZE] * 3 + [40 * row_bytes] * 3 + [11 * row_bytes] * 3
        assert gets == sorted(expected), requests
    assert len(counter.requests) == 3 * len(boxes)
