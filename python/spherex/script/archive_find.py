"""Find the SPHEREx Level-2 files of IRSA's archive that cover a position or a target catalogue.

The query is IRSA's own, as its tutorials run it (Caltech-IPAC/irsa-tutorials,
``tutorials/spherex/spherex_cutouts.md``): ``spherex.artifact`` joined to ``spherex.plane`` on
``planeid``, ``CONTAINS(POINT('ICRS', ra, dec), p.poly)``, ``p.energy_bandpassname = 'SPHEREx-D<n>'``,
sorted by ``p.time_bounds_lower``; ``a.uri`` is the file's path under ``https://irsa.ipac.caltech.edu/``
(``ibe/data/spherex/qr2/level2/2025W19_2B/l2b-v20-2025-247/2/level2_..._spx_l2b-v20-2025-247.fits`` in
the tutorial's executed output), mirrored at ``s3://nasa-irsa-spherex/qr2/level2/...``.  It goes through
pyvo's `~pyvo.dal.TAPService`, its HTTP session retrying 429 and 5xx answers with backoff.
"""

from __future__ import annotations

__all__ = [
    "IRSA_BASE_URL",
    "IRSA_S3_BUCKET",
    "IRSA_TAP_URL",
    "ArchiveQueryError",
    "archive_urls",
    "find_level2_files",
    "level2_query",
]

import os
import re
from collections.abc import Sequence

import numpy as np
from astropy.table import Table, vstack

from ..instrument import Level2FileName

IRSA_TAP_URL = "https://irsa.ipac.caltech.edu/TAP"
"""IRSA's TAP service (`str`); ``SPHEREX_TAP_URL`` or ``--tap-url`` replace it."""

IRSA_BASE_URL = "https://irsa.ipac.caltech.edu/"
"""What ``a.uri`` is relative to (`str`); ``SPHEREX_IRSA_BASE_URL`` replaces it (a mirror, a proxy)."""

IRSA_S3_BUCKET = "nasa-irsa-spherex"
"""IRSA's public mirror (`str`): ``ibe/data/spherex/<path>`` is ``s3://nasa-irsa-spherex/<path>``."""

_S3_PREFIX = "ibe/data/spherex/"
BANDS = tuple(f"D{n}" for n in range(1, 7))


class ArchiveQueryError(RuntimeError):
    """The archive's TAP service failed, refused the query, or found nothing.

    Parameters
    ----------
    url : `str`
        The service.
    problem : `str`
        What happened.
    """

    def __init__(self, url: str, problem: str) -> None:
        self.url, self.problem = url, problem
        super().__init__(f"{url}: {problem}")


def level2_query(
    ra: float, dec: float, radius: float | None = None, band: str | None = None, release: str | None = None
) -> str:
    """Return the ADQL of IRSA's Level-2 query for one position.

    Parameters
    ----------
    ra, dec : `float`
        ICRS degrees.
    radius : `float`, optional
        Degrees: files whose footprint comes within it (``INTERSECTS`` with a ``CIRCLE``); by default
        those containing the position.
    band : `str`, optional
        ``D1`` ... ``D6``.
    release : `str`, optional
        ``qr``, ``qr2``, ...: the first directory of ``a.uri`` under ``ibe/data/spherex/``.

    Returns
    -------
    adql : `str`

    Raises
    ------
    ValueError
        Raised for a position off the sky, a negative radius, an unknown band or a release name that
        is not letters and digits.
    """
    if not (np.isfinite(ra) and np.isfinite(dec) and -90.0 <= dec <= 90.0):
        raise ValueError(f"({ra}, {dec}) is not a position on the sky (ICRS degrees)")
    if radius is not None and not (np.isfinite(radius) and 0.0 <= radius <= 10.0):
        raise ValueError(f"radius {radius} must be from 0 to 10 degrees")
    where = [
        f"1 = CONTAINS(POINT('ICRS', {ra:.8f}, {dec:.8f}), p.poly)"
        if not radius
        else f"1 = INTERSECTS(CIRCLE('ICRS', {ra:.8f}, {dec:.8f}, {radius:.8f}), p.poly)"
    ]
    if band is not None:
        if band.upper() not in BANDS:
            raise ValueError(f"band {band!r} is not one of {', '.join(BANDS)}")
        where.append(f"p.energy_bandpassname = 'SPHEREx-{band.upper()}'")
    if release is not None:
        if not release.isalnum():
            raise ValueError(f"release {release!r} must be letters and digits, e.g. qr2")
        where.append(f"a.uri LIKE '{_S3_PREFIX}{release.lower()}/%'")
    return (
        "SELECT a.uri, p.obs_id, p.energy_bandpassname, p.time_bounds_lower, p.time_bounds_upper\n"
        "FROM spherex.artifact a\nJOIN spherex.plane p ON a.planeid = p.planeid\n"
        "WHERE " + "\n  AND ".join(where) + "\nORDER BY p.time_bounds_lower"
    )


def _service(url: str):  # type: ignore[no-untyped-def]
    import pyvo
    import requests
    from urllib3.util.retry import Retry

    session = requests.Session()
    # A TAP query only reads: asking again after IRSA's proxy answered 502 under load is safe.
    retries = Retry(
        total=int(os.environ.get("SPHEREX_ARCHIVE_RETRIES", "5")),
        backoff_factor=float(os.environ.get("SPHEREX_ARCHIVE_BACKOFF", "0.5")),
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,
        respect_retry_after_header=True,
    )
    adapter = requests.adapters.HTTPAdapter(max_retries=retries)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return pyvo.dal.TAPService(url, session=session)


def _run(service, url: str, adql: str) -> Table:  # type: ignore[no-untyped-def]
    import pyvo
    import requests

    try:
        return service.run_sync(adql).to_table()
    except pyvo.dal.DALQueryError as err:
        raise ArchiveQueryError(url, f"the TAP service refused the query ({err})") from None
    except (pyvo.dal.DALAccessError, requests.exceptions.RequestException) as err:
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        cause = re.search(r"Caused by \w+\('([^']*)", text)  # urllib3's reason after its retries
        problem = cause.group(1) if cause else text
        raise ArchiveQueryError(url, f"the TAP service failed ({problem})") from None


def _files(rows: Table, s3: bool) -> Table:
    uris = [str(u) for u in rows["uri"]]
    base = os.environ.get("SPHEREX_IRSA_BASE_URL") or IRSA_BASE_URL
    base = base if base.endswith("/") else base + "/"
    urls = [
        f"s3://{IRSA_S3_BUCKET}/{u.removeprefix(_S3_PREFIX)}" if s3 else base + u.lstrip("/") for u in uris
    ]
    names = [Level2FileName.parse(u.rsplit("/", 1)[-1]) for u in uris]
    bands = [str(b).removeprefix("SPHEREx-") for b in rows["energy_bandpassname"]]
    return Table(
        {
            "url": urls,
            "obs_id": [str(o) for o in rows["obs_id"]],
            "band": bands,
            "detector": [n.detector if n is not None else -1 for n in names],
            "mjd_begin": np.asarray(rows["time_bounds_lower"], dtype=float),
            "mjd_end": np.asarray(rows["time_bounds_upper"], dtype=float),
        }
    )


def find_level2_files(
    positions: Sequence[tuple[str, float, float]],
    *,
    radius: float | None = None,
    band: str | None = None,
    release: str | None = None,
    tap_url: str | None = None,
    s3: bool = False,
) -> Table:
    """Ask IRSA's TAP service which Level-2 files cover each position.

    Parameters
    ----------
    positions : `~collections.abc.Sequence` [`tuple` [`str`, `float`, `float`]]
        ``(name, ra, dec)`` of each target (ICRS degrees).
    radius, band, release
        As `level2_query`.
    tap_url : `str`, optional
        The service; ``SPHEREX_TAP_URL`` or `IRSA_TAP_URL` by default.
    s3 : `bool`, optional
        Give the files' URLs in IRSA's public S3 mirror instead of HTTPS.

    Returns
    -------
    files : `astropy.table.Table`
        One row per target and file: ``target``, ``url``, ``obs_id``, ``band`` (``D1`` ...),
        ``detector``, ``mjd_begin``, ``mjd_end``; by target, then observation time.

    Raises
    ------
    ValueError
        Raised for a bad position, radius, band or release (before anything is asked).
    ArchiveQueryError
        Raised, naming the service, if it fails after retries, refuses the query, or no file covers any
        of the positions.
    """
    url = tap_url or os.environ.get("SPHEREX_TAP_URL") or IRSA_TAP_URL
    queries = [(name, level2_query(ra, dec, radius, band, release)) for name, ra, dec in positions]
    service = _service(url)
    tables = []
    for name, adql in queries:
        found = _files(_run(service, url, adql), s3)
        found.add_column([name] * len(found), name="target", index=0)
        tables.append(found)
    result = vstack(tables) if tables else Table()
    if len(result) == 0:
        where = ", ".join(f"({ra:g}, {dec:g})" for _, ra, dec in positions[:3])
        what = f" in band {band.upper()}" if band else ""
        raise ArchiveQueryError(url, f"no SPHEREx Level-2 file covers {where}{what}")
    return result


def archive_urls(path: str | os.PathLike) -> list[str]:
    """Return the ``url`` column of a table `find_level2_files` wrote (CSV or ECSV), each URL once.

    Raises
    ------
    ValueError
        Raised, naming the file, if it is not such a table or a URL is not ``https://``, ``http://`` or
        ``s3://``.
    """
    try:
        table = Table.read(path, format="ascii.ecsv" if str(path).endswith(".ecsv") else "ascii.csv")
    except Exception as err:
        raise ValueError(f"{path}: not a table of archive files ({err})") from None
    if "url" not in table.colnames:
        raise ValueError(f"{path}: no 'url' column (write it with spherex-archive find --format csv)")
    urls = list(dict.fromkeys(str(u) for u in table["url"]))
    for url in urls:
        if not url.startswith(("https://", "http://", "s3://")):
            raise ValueError(f"{path}: {url!r} is not an https://, http:// or s3:// URL")
    return urls
