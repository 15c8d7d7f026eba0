"""SPHEREx files where IRSA's archive keeps them: checked, retried byte ranges over HTTPS and S3."""

from .ranges import RangeFetcher, RemoteFileChangedError, RemoteReadError, RetryPolicy, range_fetcher
from .s3 import allow_anonymous, anonymous_buckets

__all__ = [
    "RangeFetcher",
    "RemoteFileChangedError",
    "RemoteReadError",
    "RetryPolicy",
    "allow_anonymous",
    "anonymous_buckets",
    "range_fetcher",
]
