"""Where the benchmark's Level-2 files live: page-cached or cold local files, or an object store.

`bench_spectra.py` measures each contender on each kind of storage; this module makes the repositories
and says how a plain script reads a whole file from each.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lsst.daf.butler import Butler
from lsst.daf.butler.script import createRepo
from lsst.resources import ResourcePath

from bench_formatters import evict

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.backend_repos import render_seed  # noqa: E402
from tests.servers import MotoS3Server  # noqa: E402

from spherex.core import SPHERExLevel2Image  # noqa: E402
from spherex.script import ingest_spherex  # noqa: E402

SEED = "resource://spherex/configs/butler.yaml"
DIMENSIONS = "resource://spherex/configs/dimensions.yaml"


def drop_page_cache(paths: list[Path]) -> None:
    """Evict files from the page cache (``posix_fadvise(DONTNEED)``; written pages are flushed first)."""
    for path in paths:
        evict(path)


def warm_page_cache(paths: list[Path]) -> None:
    """Read files whole so that the page cache holds them."""
    for path in paths:
        with open(path, "rb") as stream:
            while stream.read(1 << 24):
                pass


def local_repo(work: Path, files_dir: Path) -> str:
    """A sqlite + POSIX repository with the files ingested by symbolic link (the files stay put)."""
    repo = str(work / f"DATA-{os.getpid()}-{len(list(work.glob('DATA-*')))}")
    createRepo(repo, seed_config=SEED, dimension_config=DIMENSIONS, override=True)
    assert ingest_spherex(repo, [str(files_dir)], transfer="symlink").ok
    return repo


@contextmanager
def s3_repo(
    work: Path, files_dir: Path, latency: float, bandwidth: float | None
) -> Iterator[tuple[str, list[str]]]:
    """A sqlite + S3 repository on a loopback moto server answering each request after ``latency`` s.

    Yields
    ------
    repo, uris : `str`, `list` [`str`]
        The repository, and the S3 URIs of the files (what a script that downloads them is given).
    """
    with MotoS3Server(latency=latency, bandwidth=bandwidth) as server:
        saved = {key: os.environ.get(key) for key in server.env}
        os.environ.update(server.env)
        try:
            server.create_bucket("spherex-bench")
            seed = render_seed(
                "butler-s3.yaml", {"SPHEREX_S3_BUCKET": "spherex-bench", "SPHEREX_S3_PREFIX": "repo"},
                work / "seed-s3.yaml",
            )  # fmt: skip
            repo = str(work / f"DATA-s3-{os.getpid()}")
            createRepo(repo, seed_config=str(seed), dimension_config=DIMENSIONS, override=True)
            assert ingest_spherex(repo, [str(files_dir)], transfer="copy").ok
            with Butler.from_config(repo) as butler:
                refs = butler.query_datasets("spectralImage", collections="SPHEREx/l2b-v20", explain=False)
                uris = sorted(str(butler.getURI(ref)) for ref in refs)
            yield repo, uris
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def read_whole(location: str | Path) -> SPHERExLevel2Image:
    """Read a file whole as a script does: from disk, or downloaded from an object store into memory."""
    if isinstance(location, Path) or "://" not in str(location):
        return SPHERExLevel2Image.read(location)
    return SPHERExLevel2Image.read(io.BytesIO(ResourcePath(location).read()))
