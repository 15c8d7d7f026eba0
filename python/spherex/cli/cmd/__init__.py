"""Click commands added to ``butler`` by the spherex package."""

__all__ = ["ingest_simulated", "ingest_spherex", "ingest_targets"]

from ..compat import add_flatten_chains_alias
from .commands import ingest_simulated, ingest_spherex
from .ingest_targets import ingest_targets

# Loading this package's commands (entry point or DAF_BUTLER_PLUGINS) also keeps the 2020 README's
# `butler query-collections --flatten-chains` working.
add_flatten_chains_alias()
