"""Click commands added to ``butler`` by the spherex package."""

__all__ = ["ingest_simulated"]

from .commands import ingest_simulated
