"""moto's S3 server with the latency (and bandwidth) of a real object store, for benchmarks.

    python -m tests.slow_moto -H 127.0.0.1 -p PORT --latency 0.03 [--bandwidth 50e6]

Each request waits ``latency`` seconds before it is answered, and a response body is sent no faster
than ``bandwidth`` bytes per second: what a client far from its data pays.  `tests.servers.MotoS3Server`
starts it when given a latency or a bandwidth.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


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
