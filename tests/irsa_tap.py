"""A TAP endpoint on 127.0.0.1 answering IRSA's SPHEREx Level-2 query over files laid out as IRSA does.

What it answers is IRSA's schema as IRSA's tutorials show it (Caltech-IPAC/irsa-tutorials,
``tutorials/spherex/spherex_cutouts.md`` and its executed page of 2026-08-18 on the gh-pages branch,
``spherex-cutouts/index.html``: the query joins ``spherex.artifact a`` to ``spherex.plane p`` on
``planeid``, selects ``a.uri`` and ``p.time_bounds_lower``, and 84 rows came back for (210.80227,
54.34895) in ``SPHEREx-D2``, each ``a.uri`` a path such as
``ibe/data/spherex/qr2/level2/2025W19_2B/l2b-v20-2025-247/2/level2_2025W19_2B_0346_1D2_spx_l2b-v20-2025-247.fits``).
The rows are made here from simulated files: ``obs_id`` and ``energy_bandpassname`` are the columns the
issue names, ``time_bounds_upper`` is ``time_bounds_lower``'s pair in ObsCore; their VOTable types are
made up (char and double), as is the circle test (a footprint's corners within the radius).

    with IrsaTapServer(files) as tap:      # files: [(relative a.uri, local path), ...]
        tap.url                            # http://127.0.0.1:PORT/TAP
        tap.mode = "error" | "empty" | "502" | "ok"
"""

from __future__ import annotations

__all__ = ["IrsaTapServer"]

import io
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
from astropy.io import fits
from astropy.io.votable import from_table
from astropy.table import Table
from astropy.wcs import WCS

_POINT = re.compile(r"CONTAINS\(POINT\('ICRS',\s*([-\d.eE+]+),\s*([-\d.eE+]+)\),\s*p\.poly\)", re.I)
_CIRCLE = re.compile(
    r"INTERSECTS\(CIRCLE\('ICRS',\s*([-\d.eE+]+),\s*([-\d.eE+]+),\s*([-\d.eE+]+)\),\s*p\.poly\)", re.I
)
_BAND = re.compile(r"p\.energy_bandpassname\s*=\s*'([^']+)'", re.I)
_RELEASE = re.compile(r"a\.uri\s+LIKE\s+'ibe/data/spherex/([^/%']+)/%'", re.I)
_ERROR_VOTABLE = """<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE type="results"><INFO name="QUERY_STATUS" value="ERROR">{message}</INFO></RESOURCE>
</VOTABLE>"""


class _File:
    def __init__(self, uri: str, path: Path) -> None:
        header = fits.getheader(path, "IMAGE")
        self.uri, self.wcs = uri, WCS(header).celestial
        self.shape = (header["NAXIS2"], header["NAXIS1"])
        self.obs_id, self.detector = str(header["OBSID"]), int(header["DETECTOR"])
        self.mjd = (float(header["MJD-BEG"]), float(header["MJD-END"]))

    def covers(self, ra: float, dec: float, radius: float) -> bool:
        x, y = (float(v) for v in self.wcs.world_to_pixel_values(ra, dec))
        rows, columns = self.shape
        margin = radius * 3600.0 / 6.15 if radius else 0.0  # pixels of 6.15 arcsec (made-up test)
        return -0.5 - margin <= x <= columns - 0.5 + margin and -0.5 - margin <= y <= rows - 0.5 + margin


class IrsaTapServer:
    """The TAP endpoint, in a thread of this process.

    Parameters
    ----------
    files : `list` [`tuple` [`str`, `pathlib.Path`]]
        Each file's ``a.uri`` and its local copy (for its footprint, OBSID, detector and times).
    """

    def __init__(self, files: list[tuple[str, Path]]) -> None:
        self.files = [_File(uri, Path(path)) for uri, path in files]
        self.mode = "ok"
        self.queries: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The service URL (`str`)."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/TAP"

    def __enter__(self) -> Self:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                self._answer(urllib.parse.urlsplit(self.path).query)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(self.rfile.read(length).decode())

            def _answer(self, form: str) -> None:
                if not urllib.parse.urlsplit(self.path).path.rstrip("/").endswith("/TAP/sync"):
                    self._send(404, b"not found", "text/plain")
                    return
                query = urllib.parse.parse_qs(form).get("QUERY", [""])[0]
                outer.queries.append(query)
                if outer.mode == "502":
                    self._send(502, b"Bad Gateway", "text/plain")
                elif outer.mode == "error":
                    message = "ADQL syntax error (made-up message of the test server)"
                    self._send(200, _ERROR_VOTABLE.format(message=message).encode(), "text/xml")
                else:
                    self._send(200, outer.answer(query, empty=outer.mode == "empty"), "text/xml")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def answer(self, query: str, empty: bool = False) -> bytes:
        """The VOTable of the rows that ``query`` selects."""
        point, circle = _POINT.search(query), _CIRCLE.search(query)
        band, release = _BAND.search(query), _RELEASE.search(query)
        if circle:
            ra, dec, radius = (float(v) for v in circle.groups())
        elif point:
            (ra, dec), radius = (float(v) for v in point.groups()), 0.0
        else:
            raise ValueError(f"the test TAP server cannot answer {query!r}")
        rows = [
            f
            for f in self.files
            if not empty
            and f.covers(ra, dec, radius)
            and (band is None or band.group(1) == f"SPHEREx-D{f.detector}")
            and (release is None or f.uri.startswith(f"ibe/data/spherex/{release.group(1)}/"))
        ]
        rows.sort(key=lambda f: f.mjd[0])
        table = Table(
            {
                "uri": np.array([f.uri for f in rows], dtype=str),
                "obs_id": np.array([f.obs_id for f in rows], dtype=str),
                "energy_bandpassname": np.array([f"SPHEREx-D{f.detector}" for f in rows], dtype=str),
                "time_bounds_lower": np.array([f.mjd[0] for f in rows], dtype=float),
                "time_bounds_upper": np.array([f.mjd[1] for f in rows], dtype=float),
            }
        )
        stream = io.BytesIO()
        from_table(table).to_xml(stream)
        return stream.getvalue()
