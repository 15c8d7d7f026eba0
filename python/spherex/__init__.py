"""SPHEREx pipelines on the Rubin Observatory Gen3 middleware (Butler and PipelineTask)."""

from .version import __version__

__all__ = ["__version__"]
