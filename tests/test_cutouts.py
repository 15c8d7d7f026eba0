"""The ``cutouts`` component (``boxes`` parameter): many cutouts of one image from one pass over its rows.

What it returns must be exactly what one ``slices`` get per box returns (every plane, WCS, flags, PSF
zone, wavelengths), for plain and tile-compressed files, and a local file must be read once per merged
row range and plane, however many cutouts share those rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsst.daf.butler import Butler

from spherex.core import SPHERExLevel2Image
from spherex.script import ingest_spherex

from .conftest import make_repo
from .test_formatters import RUN, _bytes_read, data_id, make_butler
from .test_spherex_image import assert_bit_exact, assert_same_image, make_image

SHAPE = (96, 80)


def boxes_on(shape: tuple[int, int]) -> st.SearchStrategy[list[tuple[slice, slice]]]:
    """Lists of 1-12 cutouts anywhere on an image, overlapping or not, touching its edges or not."""

    def box(draw_rows: tuple[int, int], draw_columns: tuple[int, int]) -> tuple[slice, slice]:
        (r0, r1), (c0, c1) = sorted(draw_rows), sorted(draw_columns)
        return slice(r0, r1 + 1), slice(c0, c1 + 1)

    pairs = st.tuples(
        st.tuples(st.integers(0, shape[0] - 1), st.integers(0, shape[0] - 1)),
        st.tuples(st.integers(0, shape[1] - 1), st.integers(0, shape[1] - 1)),
    )
    return st.lists(pairs.map(lambda p: box(*p)), min_size=1, max_size=12)


@pytest.fixture(scope="module")
def image_butler(tmp_path_factory: pytest.TempPathFactory) -> Butler:
    butler = make_butler(tmp_path_factory.mktemp("cutouts"))
    image = make_image(shape=SHAPE, mask=True, sip=True)
    for dataset_type in ("rawexp", "rawexpGzip", "rawexpRice"):
        butler.put(image, dataset_type, data_id())
    return butler


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(boxes=boxes_on(SHAPE), dataset_type=st.sampled_from(["rawexp", "rawexpGzip", "rawexpRice"]))
def test_cutouts_are_the_slices_gets(image_butler: Butler, boxes: list, dataset_type: str) -> None:
    ref = image_butler.find_dataset(dataset_type, data_id(), collections=RUN)
    cutouts = image_butler.get(ref.makeComponentRef("cutouts"), parameters={"boxes": boxes})
    assert isinstance(cutouts, list) and len(cutouts) == len(boxes)
    for box, cutout in zip(boxes, cutouts, strict=True):
        assert_same_image(cutout, image_butler.get(ref, parameters={"slices": box}))


@pytest.mark.skipif(
    not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io to count bytes read"
)
def test_cutouts_sharing_rows_read_them_once(tmp_path: Path) -> None:
    butler = make_butler(tmp_path)
    image = make_image(shape=(1024, 1024))
    butler.put(image, "rawexp", data_id())
    ref = butler.find_dataset("rawexp", data_id(), collections=RUN, datastore_records=True)
    # Twenty 11x11 cutouts along rows 500-520 (overlapping), and one alone further down.
    boxes = [(slice(500 + i % 10, 511 + i % 10), slice(40 * i, 40 * i + 11)) for i in range(20)]
    boxes.append((slice(900, 911), slice(7, 18)))
    butler.get(ref.makeComponentRef("cutouts"), parameters={"boxes": boxes[:1]})  # headers scanned and cached
    before = _bytes_read()
    cutouts = butler.get(ref.makeComponentRef("cutouts"), parameters={"boxes": boxes})
    read = _bytes_read() - before
    for box, cutout in zip(boxes, cutouts, strict=True):
        assert_bit_exact(cutout.data, image.data[box])
        assert_bit_exact(cutout.uncertainty.array, image.uncertainty.array[box])
    # Rows 500-520 (20 rows) and 900-910 (11), full width, of IMAGE, FLAGS and VARIANCE, once each:
    # separate slices gets would read 21 x 11 rows of each plane.
    rows = 3 * (20 + 11) * 1024 * 4
    assert rows <= read < rows + 2880, read - rows


def test_bad_cutouts_parameter_is_refused(image_butler: Butler) -> None:
    ref = image_butler.find_dataset("rawexp", data_id(), collections=RUN)
    cutouts = ref.makeComponentRef("cutouts")
    with pytest.raises(ValueError, match="'boxes' parameter must be a list of cutouts"):
        image_butler.get(cutouts, parameters={"boxes": (slice(0, 5), slice(0, 5))})
    with pytest.raises(ValueError, match="selects no pixels"):
        image_butler.get(cutouts, parameters={"boxes": [(slice(0, 5), slice(3, 3))]})
    with pytest.raises(ValueError, match="does not take 'slices'"):
        image_butler.get(cutouts, parameters={"boxes": [(slice(0, 5),)], "slices": (slice(0, 5),)})
    with pytest.raises(ValueError, match="needs the 'boxes' parameter"):
        image_butler.get(cutouts)
    with pytest.raises(ValueError, match="goes with the 'cutouts' component"):
        image_butler.get(ref, parameters={"boxes": [(slice(0, 5),)]})


@pytest.fixture(scope="module")
def level2_repo(tmp_path_factory: pytest.TempPathFactory) -> str:
    from spherex.simulator.level2 import simulate_level2

    work = tmp_path_factory.mktemp("level2")
    simulate_level2(work / "l2", exposures=1, size=256, seed=3)
    repo = make_repo(work / "DATA", register_instrument=False)
    assert ingest_spherex(repo, [str(work / "l2")]).ok
    return repo


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(boxes=boxes_on((256, 256)))
def test_level2_cutouts_are_the_slices_gets(level2_repo: str, boxes: list) -> None:
    with Butler.from_config(level2_repo, collections="SPHEREx/l2b-v20") as butler:
        ref = butler.query_datasets("spectralImage", limit=1, explain=False)[0]
        cutouts = butler.get(ref.makeComponentRef("cutouts"), parameters={"boxes": boxes})
        for box, cutout in zip(boxes, cutouts, strict=True):
            expected = butler.get(ref, parameters={"slices": box})
            assert isinstance(cutout, SPHERExLevel2Image)
            assert_same_image(cutout, expected)
            assert_bit_exact(cutout.zodi, expected.zodi)
            assert cutout.psf_model.origin == expected.psf_model.origin
            x, y = (box[1].stop - box[1].start) / 2, (box[0].stop - box[0].start) / 2
            np.testing.assert_array_equal(cutout.psf_model.at(x, y), expected.psf_model.at(x, y))
            np.testing.assert_array_equal(cutout.wavelength_at(x, y), expected.wavelength_at(x, y))


@pytest.mark.parametrize("value", ["0", "many", "1000"])
def test_bad_range_concurrency_is_named(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    from spherex.core.fits.file_reader import range_concurrency

    monkeypatch.setenv("SPHEREX_RANGE_CONCURRENCY", value)
    with pytest.raises(ValueError, match=f"SPHEREX_RANGE_CONCURRENCY='{value}'"):
        range_concurrency()
    monkeypatch.setenv("SPHEREX_RANGE_CONCURRENCY", "3")
    assert range_concurrency() == 3
