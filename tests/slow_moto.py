"""moto's S3 server with the latency (and bandwidth) of a real object store, for benchmarks.

    python -m tests.slow_moto -H 127.0.0.1 -p PORT --latency 0.03 [--bandwidth 50e6]

Each request waits ``latency`` seconds before it is answered, and a response body is sent no faster
than ``bandwidth`` bytes per second: what a client far from its data pays.  `tests.servers.MotoS3Server`
starts it when given a latency or a bandwidth.

moto answers a ranged GET by reading the whole object from its spool and slicing it (~40 ms for a
64 KiB range of a 70 MB object on a 2-core machine, against ~100 ms for the whole object); S3 serves a
range in proportion to its size.  Here an object's bytes are kept in memory once read (immutable
`bytes`, dropped when the object is written again), so that a range costs what it sends.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from moto.s3.models import FakeKey
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def _keep_object_bytes() -> None:
    """Make moto's object value a cached `bytes` (see the module's notes)."""
    spooled = FakeKey.value

    def read(key: FakeKey) -> bytes:
        cached = getattr(key, "_bench_bytes", None)
        if cached is None:
            cached = key._bench_bytes = spooled.fget(key)
        return cached

    def write(key: FakeKey, value: bytes) -> None:
        key._bench_bytes = None
        spooled.fset(key, value)

    FakeKey.value = property(read, write)


class Slowed:
    """WSGI middleware: ``latency`` seconds before each answer, bodies at most ``bandwidth`` bytes/s."""

    def __init__(self, app: Callable, latency: float, bandwidth: float | None) -> None:
        self.app, self.latency, self.bandwidth = app, latency, bandwidth

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        time.sleep(self.latency)
        return self._paced(self.app(environ, start_response))

    def _paced(self, body: Iterable[bytes]) -> Iterator[bytes]:
        try:
            for chunk in body:
                if self.bandwidth:
                    time.sleep(len(chunk) / self.bandwidth)
                yield chunk
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--bandwidth", type=float, default=None, help="bytes per second of a body")
    args = parser.parse_args()
    _keep_object_bytes()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        Slowed(app, args.latency, args.bandwidth),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
