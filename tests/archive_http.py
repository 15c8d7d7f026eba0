"""An HTTP file server on 127.0.0.1 that behaves like IRSA's archive, for tests and benchmarks.

    python -m tests.archive_http ROOT --port PORT [--latency 0.03] [--bandwidth 50e6]

It serves the files under ``ROOT`` at their relative paths (IRSA's layout is ``/ibe/data/spherex/...``)
with what a real archive server does and what a client of one must survive:

- ``HEAD`` and ``GET`` with ``Content-Length``, ``ETag`` (changes when the file is rewritten),
  ``Last-Modified`` and ``Accept-Ranges: bytes``; single ``Range: bytes=a-b`` requests answered ``206``
  with ``Content-Range`` (``416`` outside the file); ``If-Match`` answered ``412`` when the file changed.
- ``latency`` seconds before each answer and bodies paced to ``bandwidth`` bytes per second.
- Faults injected by tests through ``POST /_control/faults`` (a JSON list, see `Fault`), each for the
  next ``times`` requests of files whose path contains ``path``: an HTTP status (429 with
  ``Retry-After``, 502 as IRSA's proxy answers under load, 503, 404), a connection dropped after
  ``after_bytes`` bytes of the body, a ``Content-Range`` that does not match the bytes sent, a range
  ignored (``200`` with the whole file), a short body, or an answer delayed by ``seconds``.
- IRSA's cutout service: ``GET <file>?center=RA,DEC[deg]&size=N pix`` answers a Level-2 file of the
  N x N pixels around the position, every image plane cut, the PSF cube and ``WCS-WAVE`` whole, the
  alternate WCS ``A`` giving the parent pixels (as IRSA's SPHEREx cutouts are described in the
  Caltech-IPAC/irsa-tutorials notebook ``spherex_cutouts.md``).  Made here with this package's own
  Level-2 reader and writer: the layout is IRSA's, the bytes are not theirs.
- ``GET /_control/stats``: requests and body bytes sent per file, the ranges asked for;
  ``POST /_control/reset`` clears them.

`ArchiveHttpServer` starts it as a child process (a server in the test's own process would share its
interpreter lock with the client it measures).
"""

from __future__ import annotations

__all__ = ["IRSA_LEVEL2_PREFIX", "ArchiveHttpServer", "Fault", "irsa_path", "lay_out_as_irsa"]

import argparse
import email.utils
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from .servers import LoopbackServer, free_port

IRSA_LEVEL2_PREFIX = "ibe/data/spherex/qr2/level2"
"""Where IRSA keeps QR2's Level-2 files under https://irsa.ipac.caltech.edu/ (`str`)."""


def irsa_path(name: str) -> str:
    """Return the path IRSA gives a Level-2 file of this name (its ``a.uri`` in TAP).

    ``ibe/data/spherex/qr2/level2/<planning period>/l2b-v<N>-<date>/<detector>/<name>``, as in
    ``ibe/data/spherex/qr2/level2/2025W19_2B/l2b-v20-2025-247/2/level2_2025W19_2B_0346_1D2_spx_l2b-v20-
    2025-247.fits`` (the executed Caltech-IPAC/irsa-tutorials page ``spherex-cutouts``, 2026-08-18).
    """
    match = re.match(r"level2_(\d{4}W\d{2}_\d[A-Z])_\d{4}_\dD(\d)_spx_(l2b-v\d+-\d{4}-\d{3})\.fits$", name)
    if match is None:
        raise ValueError(f"{name} is not a Level-2 file name")
    period, detector, version = match.groups()
    return f"{IRSA_LEVEL2_PREFIX}/{period}/{version}/{detector}/{name}"


def lay_out_as_irsa(paths: list[Path], root: Path, move: bool = False) -> list[str]:
    """Copy (or move) Level-2 files under ``root`` as IRSA keeps them; return their paths under it."""
    import shutil

    relative = []
    for path in paths:
        target = root / irsa_path(path.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.move if move else shutil.copy)(path, target)
        relative.append(irsa_path(path.name))
    return relative


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 64 * 1024


@dataclass
class Fault:
    """A fault the server injects into its next answers.

    Parameters
    ----------
    kind : `str`
        ``status`` (answer ``status``), ``drop`` (close the connection after ``after_bytes`` bytes of the
        body), ``wrong-range`` (``Content-Range`` says ``shift`` bytes later than what is sent),
        ``ignore-range`` (``200`` and the whole file for a ranged request), ``short`` (only the first
        ``after_bytes`` bytes of the range, with a ``Content-Range`` and ``Content-Length`` that say so)
        or ``delay`` (wait ``seconds`` before answering).
    path : `str`, optional
        Applies to files whose URL path contains this; every file by default.
    times : `int`, optional
        How many answers it applies to.
    status, retry_after, after_bytes, shift, seconds
        The fault's parameters.
    """

    kind: str
    path: str = ""
    times: int = 1
    status: int = 502
    retry_after: float | None = None
    after_bytes: int = 0
    shift: int = 2880
    seconds: float = 0.0


class _State:
    def __init__(self, root: Path, latency: float, bandwidth: float | None) -> None:
        self.root, self.latency, self.bandwidth = root.resolve(), latency, bandwidth
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests: dict[str, int] = {}
            self.bytes_sent: dict[str, int] = {}
            self.ranges: dict[str, list[list[int]]] = {}

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.path in path and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def count(self, path: str, sent: int, byte_range: tuple[int, int] | None) -> None:
        with self.lock:
            self.requests[path] = self.requests.get(path, 0) + 1
            self.bytes_sent[path] = self.bytes_sent.get(path, 0) + sent
            if byte_range is not None:
                self.ranges.setdefault(path, []).append(list(byte_range))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    @property
    def state(self) -> _State:
        return self.server.state

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/_control/faults":
            faults = [Fault(**item) for item in json.loads(body or b"[]")]
            with self.state.lock:
                self.state.faults = faults
            self._send_json({"faults": len(faults)})
        elif self.path == "/_control/reset":
            self.state.reset()
            with self.state.lock:
                self.state.faults = []
            self._send_json({})
        else:
            self._send_status(405)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(body=False)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/_control/stats":
            with self.state.lock:
                stats = {"requests": self.state.requests, "bytes_sent": self.state.bytes_sent}
                stats["ranges"] = self.state.ranges
            self._send_json(stats)
            return
        self._serve(body=True)

    def _file(self) -> Path | None:
        relative = urllib.request.url2pathname(self.path.split("?", 1)[0]).lstrip("/")
        path = (self.state.root / relative).resolve()
        if not path.is_relative_to(self.state.root) or not path.is_file():
            return None
        return path

    def _serve(self, body: bool) -> None:
        time.sleep(self.state.latency)
        url_path = self.path.split("?", 1)[0]
        fault = self.state.take_fault(url_path)
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        if fault is not None and fault.kind == "status":
            extra = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            self._send_status(fault.status, extra)
            self.state.count(url_path, 0, None)
            return
        path = self._file()
        if path is None:
            self._send_status(404)
            return
        if "?" in self.path and body:
            self._serve_cutout(path, url_path)
            return
        stat = path.stat()
        size = stat.st_size
        etag = f'"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{size:x}"'
        if_match = self.headers.get("If-Match")
        if if_match is not None and if_match.strip() not in ("*", etag):
            self._send_status(412)
            return
        start, stop, status = 0, size, 200
        requested = self.headers.get("Range")
        if requested is not None and not (fault is not None and fault.kind == "ignore-range"):
            match = _RANGE.match(requested.strip())
            if match is None or match.groups() == ("", ""):
                self._send_status(416, {"Content-Range": f"bytes */{size}"})
                return
            first, last = match.groups()
            if first == "":
                start, stop = max(size - int(last), 0), size
            else:
                start = int(first)
                stop = size if last == "" else min(int(last) + 1, size)
            if start >= size or stop <= start:
                self._send_status(416, {"Content-Range": f"bytes */{size}"})
                return
            status = 206
            if fault is not None and fault.kind == "short":
                stop = min(stop, start + max(fault.after_bytes, 1))
        self.send_response(status)
        self.send_header("Content-Length", str(stop - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", email.utils.formatdate(stat.st_mtime, usegmt=True))
        self.send_header("Content-Type", "application/fits")
        if status == 206:
            shift = fault.shift if fault is not None and fault.kind == "wrong-range" else 0
            self.send_header("Content-Range", f"bytes {start + shift}-{stop - 1 + shift}/{size}")
        self.end_headers()
        if not body:
            return
        limit = stop - start
        if fault is not None and fault.kind == "drop":
            limit = min(limit, fault.after_bytes)
        sent = self._send_body(path, start, limit)
        self.state.count(url_path, sent, (start, stop) if status == 206 else None)
        if limit < stop - start:
            self.close_connection = True

    def _serve_cutout(self, path: Path, url_path: str) -> None:
        query = urllib.parse.parse_qs(self.path.split("?", 1)[1])
        try:
            ra, dec = (float(v) for v in query["center"][0].removesuffix("deg").split(","))
            size = int(query["size"][0].removesuffix("pix").strip())
        except (KeyError, ValueError):
            self._send_status(400)
            return
        data = _cutout_bytes(path, ra, dec, size)
        if data is None:
            self._send_status(404)
            return
        if self.state.bandwidth:
            time.sleep(len(data) / self.state.bandwidth)
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", "application/fits")
        self.end_headers()
        self.wfile.write(data)
        self.state.count(url_path, len(data), None)

    def _send_body(self, path: Path, start: int, length: int) -> int:
        sent = 0
        with open(path, "rb") as stream:
            stream.seek(start)
            while sent < length:
                chunk = stream.read(min(_CHUNK, length - sent))
                if not chunk:
                    break
                if self.state.bandwidth:
                    time.sleep(len(chunk) / self.state.bandwidth)
                try:
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(chunk)
        return sent

    def _send_status(self, status: int, headers: dict[str, str] | None = None) -> None:
        message = f"{status} {self.responses.get(status, ('',))[0]}\n".encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(message)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(message)

    def _send_json(self, value: Any) -> None:
        data = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _cutout_bytes(path: Path, ra: float, dec: float, size: int) -> bytes | None:
    """A Level-2 cutout file of ``size`` x ``size`` pixels centred on (ra, dec), or `None` off the image."""
    import io

    from spherex.core import SPHERExLevel2Image
    from spherex.core.level2.fits_reader import SPHERExLevel2FitsReader

    with SPHERExLevel2FitsReader(str(path)) as reader:
        wcs = reader.read_component("wcs", None)
        rows, columns = reader.shape
        x, y = (float(v) for v in wcs.world_to_pixel_values(ra, dec))
        x0, y0 = round(x) - size // 2, round(y) - size // 2
        box = (slice(max(y0, 0), min(y0 + size, rows)), slice(max(x0, 0), min(x0 + size, columns)))
        if box[0].stop <= box[0].start or box[1].stop <= box[1].start:
            return None
        image = SPHERExLevel2Image.from_parts(reader.read_parts(box), str(path))
    stream = io.BytesIO()
    image.fits_writer_class().write(image, stream)
    return stream.getvalue()


class ArchiveHttpServer(LoopbackServer):
    """The archive server (this module's `main`) as a child process on a free port of 127.0.0.1.

    Parameters
    ----------
    root : `pathlib.Path`
        Directory served.
    latency : `float`, optional
        Seconds before each answer.
    bandwidth : `float`, optional
        Bytes per second at most of a body.
    """

    def __init__(self, root: Path, latency: float = 0.0, bandwidth: float | None = None) -> None:
        self.root, self.latency, self.bandwidth = Path(root), latency, bandwidth
        self.port = 0
        self._process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (`str`)."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, relative: str | os.PathLike) -> str:
        """Return the URL of a file under `root` (a path relative to it)."""
        return f"{self.base_url}/{Path(relative).as_posix().lstrip('/')}"

    def start(self) -> Self:
        """Start the server and wait until it answers; returns it."""
        root = str(Path(__file__).resolve().parent.parent)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
        }
        for _attempt in range(5):
            self.port = free_port()
            command = [sys.executable, "-m", "tests.archive_http", str(self.root), "--port", str(self.port)]
            command += ["--latency", str(self.latency)]
            command += ["--bandwidth", str(self.bandwidth)] if self.bandwidth else []
            self._process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self._process.poll() is None:
                try:
                    self.stats()
                    return self
                except OSError:
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError("the archive HTTP server did not start")

    def stop(self) -> None:
        """Stop the server (safe to call twice)."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def _control(self, name: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(f"{self.base_url}/_control/{name}", data=data)
        if payload is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def inject(self, *faults: Fault) -> None:
        """Replace the faults to inject by these."""
        self._control("faults", [asdict(fault) for fault in faults])

    def reset(self) -> None:
        """Clear the statistics and the faults."""
        self._control("reset", {})

    def stats(self) -> dict[str, Any]:
        """Return ``requests``, ``bytes_sent`` and ``ranges`` per URL path (`dict`)."""
        return self._control("stats")

    def bytes_sent(self, relative: str | os.PathLike | None = None) -> int:
        """Body bytes sent, of one file (path relative to `root`) or of all."""
        sent = self.stats()["bytes_sent"]
        if relative is None:
            return sum(sent.values())
        return sent.get("/" + Path(relative).as_posix().lstrip("/"), 0)


def main() -> None:
    """Serve a directory (see the module's documentation)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--bandwidth", type=float, default=None)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _Handler)
    server.daemon_threads = True
    server.state = _State(args.root, args.latency, args.bandwidth)  # type: ignore[attr-defined]
    server.serve_forever()


if __name__ == "__main__":
    main()
