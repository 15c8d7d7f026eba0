"""Registry at survey scale: a month of SPHEREx raws (100k datasets) on sqlite and on PostgreSQL.

    python benchmarks/bench_registry.py [--raws 100000] [--days 30] [--backends sqlite,postgres]

Fills a fresh repository per back end with synthetic registry content, no files: exposure records with
timespans and regions, the six ``exposure_detector_region`` footprints of each exposure (3.5 x 3.5 deg,
arrays 4-6 behind 1-3, as the instrument sees the sky; daf_butler adds their ``healpix7`` overlaps),
``rawexp`` datasets, and one ``dark`` per array and day certified for that day.  Then it measures

- ingest rate: exposures and raw datasets registered per second (one transaction per 50 exposures, as
  ``ingest-simulated`` batches), including the HEALPix overlap rows;
- quantum graph: seconds to build ExamplePipeline's graph for one day of data (raw + the dark valid at
  each exposure's time), in process, as ``pipetask qgraph -d`` would;
- query latency: median of ``butler.query_datasets("rawexp", where="healpix7 = N AND ...")`` for pixels
  on the survey path, and of a ``--where`` on exposure metadata alone.

PostgreSQL is a private cluster on 127.0.0.1 started by ``tests/servers.py`` (needs the ``postgresql``
Debian package and ``pip install -e '.[postgres]'``).  The figures are printed, with the PostgreSQL /
sqlite ratio of each; targets will be set from them.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import astropy.units as u
from astropy.time import Time
from lsst.daf.butler import Butler, CollectionType, DatasetType, Timespan
from lsst.daf.butler.script import createRepo
from lsst.pipe.base.simple_pipeline_executor import SimplePipelineExecutor
from lsst.sphgeom import ConvexPolygon, HealpixPixelization, LonLat, UnitVector3d

from spherex.instrument import SimulatorInstrument

sys.path.insert(0, str(Path(__file__).parents[1]))
from tests.servers import PostgresServer, ServerUnavailableError  # noqa: E402

SEED = "resource://spherex/configs/butler.yaml"
DIMS = "resource://spherex/configs/dimensions.yaml"
PIPELINE = str(Path(__file__).parents[1] / "pipelines" / "ExamplePipeline.yaml")
INSTRUMENT = "simulator"
START = Time("2026-01-01T00:00:00", scale="tai")
ARRAY_DEG = 3.5
BATCH = 50


def footprint(ra: float, dec: float, half: float = ARRAY_DEG / 2) -> ConvexPolygon:
    """Return a square of side ``2 * half`` degrees centred on (ra, dec)."""
    cosd = max(math.cos(math.radians(dec)), 0.05)
    corners = [(-half, -half), (half, -half), (half, half), (-half, half)]
    return ConvexPolygon([UnitVector3d(LonLat.fromDegrees(ra + dx / cosd, dec + dy)) for dx, dy in corners])


def survey(n_exposures: int, days: int):
    """Yield (exposure id, day, timespan, boresight ra, dec) along a great-circle-ish scan."""
    per_day = math.ceil(n_exposures / days)
    seconds = 86400.0 / per_day
    for exposure in range(n_exposures):
        day, k = divmod(exposure, per_day)
        begin = START + (day * 86400.0 + k * seconds) * u.s
        # Consecutive pointings step 3.5 deg along a circle of declination that drifts each day.
        ra = (k * 7.0) % 360.0
        dec = -60.0 + (day * 4.0 + (k * 7.0) // 360.0 * 7.0) % 120.0
        yield exposure, day, Timespan(begin, begin + 112.0 * u.s), ra, dec


def detector_regions(ra: float, dec: float) -> dict[int, ConvexPolygon]:
    """Arrays 1-3 side by side in dec, 4-6 on the same sky through the dichroic."""
    regions = {}
    for i, detector in enumerate((1, 2, 3)):
        region = footprint(ra, dec + (i - 1) * ARRAY_DEG)
        regions[detector] = regions[detector + 3] = region
    return regions


def make_repo(root: str, db: str | None) -> Butler:
    seed = SEED
    if db is not None:
        config = Path(tempfile.mkdtemp()) / "seed.yaml"
        config.write_text(
            f"registry:\n  db: {db}\n"
            "storageClasses: !include resource://spherex/configs/storageClasses.yaml\n"
            "datastore:\n  cls: spherex.datastores.SPHERExFileDatastore\n  root: <butlerRoot>\n"
            "  formatters: !include resource://spherex/configs/formatters.yaml\n"
        )
        seed = str(config)
    createRepo(root, seed_config=seed, dimension_config=DIMS, override=True)
    butler = Butler.from_config(root, writeable=True)
    SimulatorInstrument().register(butler.registry)
    return butler


def fill(butler: Butler, n_exposures: int, days: int) -> dict[str, float]:
    """Insert the synthetic survey; return the timings."""
    registry = butler.registry
    raw_type = DatasetType(
        "rawexp", ("instrument", "exposure", "detector"), "SPHERExImage", universe=butler.dimensions
    )
    dark_type = DatasetType(
        "dark", ("instrument", "detector"), "SPHERExImage", universe=butler.dimensions, isCalibration=True
    )
    registry.registerDatasetType(raw_type)
    registry.registerDatasetType(dark_type)
    registry.registerCollection("rawexpr", CollectionType.RUN)
    registry.registerCollection("darkr", CollectionType.CALIBRATION)

    start = time.perf_counter()
    batch_exposures, batch_regions, batch_ids = [], [], []

    def flush() -> None:
        with butler.transaction():
            registry.insertDimensionData("exposure", *batch_exposures)
            registry.insertDimensionData("exposure_detector_region", *batch_regions)
            registry.insertDatasets(raw_type, batch_ids, run="rawexpr")
        batch_exposures.clear()
        batch_regions.clear()
        batch_ids.clear()

    for exposure, day, timespan, ra, dec in survey(n_exposures, days):
        regions = detector_regions(ra, dec)
        vertices = [v for r in regions.values() for v in r.getVertices()]
        batch_exposures.append(
            {
                "instrument": INSTRUMENT, "id": exposure, "obs_id": f"SIM{exposure:08d}",
                "exposure_time": 112.0, "observation_type": "science", "group_name": f"day{day:03d}",
                "group_id": day, "tracking_ra": ra, "tracking_dec": dec, "sky_angle": 0.0,
                "gaussian_jitter": 0.5, "has_simulated": True, "timespan": timespan,
                "region": ConvexPolygon.convexHull(vertices),
            }
        )  # fmt: skip
        for detector, region in regions.items():
            batch_regions.append(
                {"instrument": INSTRUMENT, "exposure": exposure, "detector": detector, "region": region}
            )
            batch_ids.append({"instrument": INSTRUMENT, "exposure": exposure, "detector": detector})
        if len(batch_exposures) == BATCH:
            flush()
    if batch_exposures:
        flush()
    ingest_seconds = time.perf_counter() - start

    # One dark per array and day, certified for that day.
    for day in range(days):
        run = f"darkr/day{day:03d}"
        registry.registerCollection(run, CollectionType.RUN)
        refs = registry.insertDatasets(
            dark_type, [{"instrument": INSTRUMENT, "detector": d} for d in range(1, 7)], run=run
        )
        begin = START + day * 86400.0 * u.s
        registry.certify("darkr", refs, Timespan(begin, begin + 86400.0 * u.s))
    return {"ingest_seconds": ingest_seconds}


def measure(butler: Butler, root: str, n_exposures: int, days: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    per_day = math.ceil(n_exposures / days)
    day = min(days // 2, days - 1)
    where = (
        f"instrument = '{INSTRUMENT}' AND exposure >= {day * per_day} AND exposure < {(day + 1) * per_day}"
    )
    graph_butler = SimplePipelineExecutor.prep_butler(root, inputs=["rawexpr", "darkr"], output="bench")
    start = time.perf_counter()
    executor = SimplePipelineExecutor.from_pipeline_filename(PIPELINE, where=where, butler=graph_butler)
    figures["qgraph_seconds"] = time.perf_counter() - start
    figures["qgraph_quanta"] = float(len(executor.predicted))
    graph_butler.close()

    healpix7 = HealpixPixelization(7)
    pixels = []
    for exposure, _day, _timespan, ra, dec in survey(n_exposures, days):
        if exposure % max(1, n_exposures // 15) == 0:
            pixels.append(healpix7.index(UnitVector3d(LonLat.fromDegrees(ra, dec))))
    latencies, counts = [], []
    for pixel in pixels:
        start = time.perf_counter()
        refs = butler.query_datasets(
            "rawexp", collections="rawexpr", where=f"healpix7 = {pixel} AND detector IN (1, 2, 3)",
            instrument=INSTRUMENT, explain=False, limit=None,
        )  # fmt: skip
        latencies.append(time.perf_counter() - start)
        counts.append(len(refs))
    figures["healpix_query_ms"] = 1000 * statistics.median(latencies)
    figures["healpix_query_rows"] = statistics.median(counts)

    latencies = []
    for group in range(0, days, max(1, days // 10)):
        start = time.perf_counter()
        butler.query_datasets(
            "rawexp", collections="rawexpr", where=f"exposure.group_id = {group} AND detector = 4",
            instrument=INSTRUMENT, explain=False, limit=None,
        )  # fmt: skip
        latencies.append(time.perf_counter() - start)
    figures["where_query_ms"] = 1000 * statistics.median(latencies)
    return figures


def run_backend(name: str, n_exposures: int, days: int, pg: PostgresServer | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = str(Path(tmp) / "DATA")
        db = pg.create_database() if pg is not None else None
        butler = make_repo(root, db)
        with butler:
            figures = fill(butler, n_exposures, days)
            figures |= measure(butler, root, n_exposures, days)
        figures["exposures_per_s"] = n_exposures / figures["ingest_seconds"]
        figures["raws_per_s"] = 6 * n_exposures / figures["ingest_seconds"]
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--raws", type=int, default=100_000, help="raw datasets (6 per exposure)")
    parser.add_argument("--days", type=int, default=30, help="days the raws span")
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    n_exposures = math.ceil(args.raws / 6)
    print(
        f"{6 * n_exposures} raws = {n_exposures} exposures x 6 arrays over {args.days} days "
        f"({math.ceil(n_exposures / args.days)} exposures / day)"
    )
    results: dict[str, dict[str, float]] = {}
    for backend in args.backends.split(","):
        if backend == "sqlite":
            results[backend] = run_backend(backend, n_exposures, args.days, None)
        elif backend == "postgres":
            try:
                with PostgresServer() as pg:
                    os.environ.update(pg.env)  # LSST_DB_AUTH: the password stays in a file
                    results[backend] = run_backend(backend, n_exposures, args.days, pg)
            except ServerUnavailableError as err:
                print(f"postgres: skipped ({err})")
                continue
        else:
            parser.error(f"unknown back end {backend!r}")
        f = results[backend]
        print(
            f"{backend:9s} ingest {f['ingest_seconds']:7.1f} s = {f['exposures_per_s']:6.1f} exposures/s "
            f"({f['raws_per_s']:6.1f} raws/s); qgraph for one day ({f['qgraph_quanta']:.0f} quanta) "
            f"{f['qgraph_seconds']:6.2f} s; healpix7 query {f['healpix_query_ms']:6.1f} ms "
            f"({f['healpix_query_rows']:.0f} rows); exposure --where {f['where_query_ms']:6.1f} ms"
        )
    if {"sqlite", "postgres"} <= results.keys():
        sq, pg_ = results["sqlite"], results["postgres"]
        print("postgres / sqlite ratios (time; < 1 means PostgreSQL is faster):")
        for key in ("ingest_seconds", "qgraph_seconds", "healpix_query_ms", "where_query_ms"):
            print(f"  {key:18s} {pg_[key] / sq[key]:6.2f}")


if __name__ == "__main__":
    main()
