"""Anonymous reads of public S3 buckets, such as IRSA's mirror ``s3://nasa-irsa-spherex``.

IRSA mirrors SPHEREx's files in a public AWS bucket that anyone may read without credentials
(``nasa-irsa-spherex``, region us-east-1; IRSA's "SPHEREx data in the cloud" pages and the
Caltech-IPAC/irsa-tutorials cloud notebooks read it with ``anon=True`` / unsigned requests).
lsst-resources' S3 client signs every request, so without AWS credentials it cannot read the bucket at
all, and with them it still signs.  `allow_anonymous` makes lsst-resources' own (cached) client, and
so the Butler datastore, send unsigned requests to the buckets named in ``SPHEREX_ANONYMOUS_S3_BUCKETS``
(comma-separated; default ``nasa-irsa-spherex``; empty for none), and signed ones to every other bucket.
"""

from __future__ import annotations

__all__ = ["ANONYMOUS_BUCKETS_DEFAULT", "allow_anonymous", "anonymous_buckets", "s3_client_for"]

import os
import threading
from typing import Any

from lsst.resources import ResourcePath

ANONYMOUS_BUCKETS_DEFAULT = "nasa-irsa-spherex"
"""Buckets read without signing unless ``SPHEREX_ANONYMOUS_S3_BUCKETS`` says otherwise (`str`)."""

_hooked: set[int] = set()
_lock = threading.Lock()


def anonymous_buckets() -> frozenset[str]:
    """Return the buckets read anonymously (``SPHEREX_ANONYMOUS_S3_BUCKETS``)."""
    text = os.environ.get("SPHEREX_ANONYMOUS_S3_BUCKETS", ANONYMOUS_BUCKETS_DEFAULT)
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def _unsigned_for_public_buckets(context: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """Return botocore.UNSIGNED (``choose-signer`` handler) for a request to an anonymous bucket."""
    import botocore

    bucket = ((context or {}).get("input_params") or {}).get("Bucket")
    if bucket is not None and bucket in anonymous_buckets():
        return botocore.UNSIGNED
    return None


def s3_client_for(uri: ResourcePath) -> Any:
    """Return lsst-resources' S3 client for ``uri``, unsigned for anonymous buckets.

    Parameters
    ----------
    uri : `lsst.resources.ResourcePath`
        An ``s3://`` URI (its profile, ``s3://profile@bucket/...``, selects the endpoint as in
        lsst-resources).

    Returns
    -------
    client : `botocore.client.S3`
        The client lsst-resources caches for that endpoint, with `allow_anonymous` applied.
    """
    from lsst.resources.s3utils import getS3Client

    client = getS3Client(getattr(uri, "_profile", None))
    with _lock:
        if id(client) not in _hooked:
            client.meta.events.register("choose-signer.s3", _unsigned_for_public_buckets)
            _hooked.add(id(client))
    return client


def allow_anonymous(uri: ResourcePath) -> ResourcePath:
    """Make lsst-resources read ``uri`` without credentials if its bucket is anonymous.

    Idempotent and cheap; call it before lsst-resources touches an ``s3://`` URI (size, existence,
    download) so that the datastore's own requests are unsigned too.

    Parameters
    ----------
    uri : `lsst.resources.ResourcePath`
        Any URI; only ``s3://`` ones of anonymous buckets are affected.

    Returns
    -------
    uri : `lsst.resources.ResourcePath`
        The same URI.
    """
    if uri.scheme == "s3" and uri.netloc in anonymous_buckets():
        s3_client_for(uri)
    return uri
