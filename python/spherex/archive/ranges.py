"""Byte ranges of files in a remote archive (HTTPS, S3), checked and retried as a real service needs.

lsst-resources' handles read a range with one request and trust the answer: a ``200`` carrying the
whole file, a ``Content-Range`` for other bytes, a body cut short or a file replaced on the server all
come back as data.  A `RangeFetcher` checks every answer against what was asked (``206``, the
``Content-Range`` start and length, the body's length, the file's size as registered, the ``ETag`` of
its first answer through ``If-Match``), retries with exponential backoff what retrying can cure
(``429`` and ``5xx`` answers, honouring ``Retry-After``; timeouts; connections dropped mid-body) and
reports everything else as one `RemoteReadError` naming the URL.

The retry policy comes from the environment (`RetryPolicy.from_environment`):
``SPHEREX_ARCHIVE_RETRIES`` (attempts per range, default 5), ``SPHEREX_ARCHIVE_BACKOFF`` (first wait,
seconds, default 0.5; doubled each time up to 8 s) and ``SPHEREX_ARCHIVE_TIMEOUT`` (seconds to connect
and between bytes, default 30).
"""

from __future__ import annotations

__all__ = ["RangeFetcher", "RemoteFileChangedError", "RemoteReadError", "RetryPolicy", "range_fetcher"]

import logging
import os
import random
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from lsst.daf.butler import FileIntegrityError
from lsst.resources import ResourcePath

from ..core.errors import RemoteReadError

_LOG = logging.getLogger(__name__)
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$")
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class RemoteFileChangedError(RemoteReadError, FileIntegrityError):
    """A remote file is not the one registered (or first read): another size or ``ETag``.

    A `lsst.daf.butler.FileIntegrityError`, so that the datastore passes it on as it is.
    """


class _RetryableError(Exception):
    """An answer worth asking again for (the problem, and the server's Retry-After if any)."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem, self.retry_after = problem, retry_after


def _env_number(name: str, default: float, low: float, high: float) -> float:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise ValueError(f"{name}={text!r}: give a number from {low:g} to {high:g}")
    return value


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a range is asked for again.

    Parameters
    ----------
    attempts : `int`
        Requests per range at most.
    backoff : `float`
        Seconds before the second attempt; doubled for each further one (with jitter), at most
        `max_backoff`.  A server's ``Retry-After`` is honoured up to `max_backoff`.
    max_backoff : `float`
        Longest wait, seconds.
    timeout : `float`
        Seconds to connect, and between two bytes of an answer.
    """

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 8.0
    timeout: float = 30.0

    @classmethod
    def from_environment(cls) -> RetryPolicy:
        """Return the policy ``SPHEREX_ARCHIVE_RETRIES``, ``_BACKOFF`` and ``_TIMEOUT`` set.

        Raises
        ------
        ValueError
            Raised, naming the variable, for a value that is not a number in range.
        """
        return cls(
            attempts=int(_env_number("SPHEREX_ARCHIVE_RETRIES", cls.attempts, 1, 100)),
            backoff=_env_number("SPHEREX_ARCHIVE_BACKOFF", cls.backoff, 0.0, 60.0),
            timeout=_env_number("SPHEREX_ARCHIVE_TIMEOUT", cls.timeout, 0.1, 3600.0),
        )

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        """Return the seconds to wait after failed attempt ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        return min(self.backoff * 2 ** (attempt - 1) * (0.5 + random.random() / 2), self.max_backoff)


class RangeFetcher:
    """Fetch checked byte ranges of one remote file; safe to use from several threads.

    Parameters
    ----------
    uri : `lsst.resources.ResourcePath`
        The file.
    size : `int`, optional
        Its size as registered (``-1`` if unknown): an answer giving another size is a changed file.
    policy : `RetryPolicy`, optional
        Retries; `RetryPolicy.from_environment` by default.
    """

    def __init__(self, uri: ResourcePath, size: int = -1, policy: RetryPolicy | None = None) -> None:
        self.uri, self.url = uri, str(uri)
        self.size = size
        self.etag: str | None = None
        self.policy = policy or RetryPolicy.from_environment()
        self.requests = 0
        self._lock = threading.Lock()

    def fetch(self, offset: int, length: int) -> bytes:
        """Return ``length`` bytes from ``offset`` (fewer only at the end of the file).

        Raises
        ------
        FileNotFoundError
            Raised if the file is not there (or no longer there).
        PermissionError
            Raised if the server refuses it.
        RemoteReadError
            Raised if the file changed since it was registered or first read, the server does not serve
            ranges, or the attempts ran out; the message names the URL and the last problem.
        """
        if length <= 0 or (self.size >= 0 and offset >= self.size):
            return b""
        if self.size >= 0:
            length = min(length, self.size - offset)
        parts: list[bytes] = []
        done = 0
        while done < length:
            data = self._fetch_with_retries(offset + done, length - done)
            if not data:
                break
            parts.append(data)
            done += len(data)
        return b"".join(parts)

    def _fetch_with_retries(self, offset: int, length: int) -> bytes:
        for attempt in range(1, self.policy.attempts + 1):
            try:
                with self._lock:
                    self.requests += 1
                return self._fetch_once(offset, length)
            except _RetryableError as retry:
                if attempt == self.policy.attempts:
                    raise RemoteReadError(
                        self.url,
                        f"gave up reading bytes {offset}-{offset + length - 1} after {attempt} attempts "
                        f"({retry.problem}); set SPHEREX_ARCHIVE_RETRIES to try longer",
                    ) from None
                pause = self.policy.wait(attempt, retry.retry_after)
                _LOG.info("%s: %s; asking again in %.2f s", self.url, retry.problem, pause)
                time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    def _fetch_once(self, offset: int, length: int) -> bytes:
        raise NotImplementedError  # pragma: no cover

    def _check_answer(
        self, offset: int, length: int, content_range: str | None, etag: str | None, data: bytes
    ) -> bytes:
        """Check a ranged answer against the request; return its bytes (may be a legal prefix)."""
        if content_range is None:
            raise RemoteReadError(self.url, "answered a Range request without a Content-Range")
        match = _CONTENT_RANGE.match(content_range)
        if match is None:
            raise _RetryableError(f"malformed Content-Range {content_range!r}")
        first, last, total = int(match.group(1)), int(match.group(2)), match.group(3)
        if total != "*":
            self._check_size(int(total))
        if first != offset or last < first or last > offset + length - 1:
            asked = f"{offset}-{offset + length - 1}"
            raise _RetryableError(f"asked for bytes {asked}, Content-Range says {content_range}")
        if len(data) != last - first + 1:
            raise _RetryableError(
                f"Content-Range {content_range} but {len(data)} bytes came (connection dropped)"
            )
        self._check_etag(etag)
        return data

    def _check_size(self, total: int) -> None:
        if self.size >= 0 and total != self.size:
            raise RemoteFileChangedError(
                self.url,
                f"is {total} bytes on the server but {self.size} bytes were registered: the file changed "
                "since it was ingested; ingest it again",
            )
        self.size = total

    def _check_etag(self, etag: str | None) -> None:
        with self._lock:
            if self.etag is None:
                self.etag = etag
            elif etag is not None and etag != self.etag:
                raise self._changed()

    def _changed(self) -> RemoteFileChangedError:
        return RemoteFileChangedError(
            self.url, f"changed on the server while it was read (ETag was {self.etag}); read it again"
        )


class HttpRangeFetcher(RangeFetcher):
    """Ranges of an ``http://`` or ``https://`` file, through `requests` (one session per thread)."""

    _sessions = threading.local()

    def _session(self) -> Any:
        session = getattr(self._sessions, "session", None)
        if session is None:
            import requests

            session = self._sessions.session = requests.Session()
        return session

    def _fetch_once(self, offset: int, length: int) -> bytes:
        import requests

        headers = {"Range": f"bytes={offset}-{offset + length - 1}", "Accept-Encoding": "identity"}
        if self.etag is not None:
            headers["If-Match"] = self.etag
        url = self.uri.geturl()
        try:
            answer = self._session().get(url, headers=headers, timeout=self.policy.timeout)
            data = answer.content
        except requests.exceptions.Timeout:
            raise _RetryableError(f"no answer within {self.policy.timeout:g} s") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as err:
            raise _RetryableError(f"connection failed ({type(err).__name__})") from None
        except requests.exceptions.RequestException as err:
            raise RemoteReadError(self.url, f"request failed ({err})") from None
        status = answer.status_code
        if status == 206:
            return self._check_answer(
                offset, length, answer.headers.get("Content-Range"), answer.headers.get("ETag"), data
            )
        if status == 416:
            return b""
        if status == 200:
            raise RemoteReadError(
                self.url,
                "the server ignored a Range request (200 with the whole file); ingest it with "
                "--transfer copy instead",
            )
        if status == 412:
            raise self._changed()
        if status == 404:
            raise FileNotFoundError(f"{self.url}: not found on the server (404)")
        if status in (401, 403):
            raise PermissionError(f"{self.url}: the server refused access ({status})")
        if status in _RETRY_STATUS:
            raise _RetryableError(
                f"the server answered {status}", _retry_after(answer.headers.get("Retry-After"))
            )
        raise RemoteReadError(self.url, f"the server answered {status} to a ranged GET")


class S3RangeFetcher(RangeFetcher):
    """Ranges of an ``s3://`` object (anonymously for public buckets, see `spherex.archive.s3`)."""

    def _fetch_once(self, offset: int, length: int) -> bytes:
        import botocore.exceptions

        from .s3 import s3_client_for

        client = s3_client_for(self.uri)
        bucket, key = self.uri.netloc, self.uri.relativeToPathRoot
        extra = {} if self.etag is None else {"IfMatch": self.etag}
        try:
            answer = client.get_object(
                Bucket=bucket, Key=key, Range=f"bytes={offset}-{offset + length - 1}", **extra
            )
            data = answer["Body"].read()
        except botocore.exceptions.ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in ("NoSuchKey", "404", "NotFound"):
                raise FileNotFoundError(f"{self.url}: no such object") from None
            if code == "InvalidRange" or status == 416:
                return b""
            if code == "PreconditionFailed" or status == 412:
                raise self._changed() from None
            if code in ("AccessDenied", "403"):
                raise PermissionError(f"{self.url}: access denied") from None
            if status in _RETRY_STATUS or code in ("SlowDown", "ServiceUnavailable", "InternalError"):
                raise _RetryableError(f"S3 answered {status} {code}") from None
            raise RemoteReadError(self.url, f"S3 answered {status} {code}") from None
        except (botocore.exceptions.ConnectionError, botocore.exceptions.ReadTimeoutError) as err:
            raise _RetryableError(f"connection failed ({type(err).__name__})") from None
        except botocore.exceptions.IncompleteReadError:
            raise _RetryableError("connection dropped inside the body") from None
        return self._check_answer(offset, length, answer.get("ContentRange"), answer.get("ETag"), data)


class HandleRangeFetcher(RangeFetcher):
    """Ranges of any other scheme through lsst-resources' handles (no checks beyond the length)."""

    def _fetch_once(self, offset: int, length: int) -> bytes:
        with self.uri.open("rb") as handle:
            handle.seek(offset)
            return handle.read(length)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None  # an HTTP date: the policy's own backoff


def range_fetcher(uri: ResourcePath, size: int = -1) -> RangeFetcher:
    """Return the fetcher for a remote file's scheme.

    Parameters
    ----------
    uri : `lsst.resources.ResourcePath`
        The file.
    size : `int`, optional
        Its size as registered, ``-1`` if unknown.

    Returns
    -------
    fetcher : `RangeFetcher`
        `HttpRangeFetcher` for HTTP(S), `S3RangeFetcher` for S3, else `HandleRangeFetcher`.
    """
    match uri.scheme:
        case "http" | "https":
            return HttpRangeFetcher(uri, size)
        case "s3":
            return S3RangeFetcher(uri, size)
    return HandleRangeFetcher(uri, size)
