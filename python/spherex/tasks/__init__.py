"""SPHEREx PipelineTasks."""

from .subtract import *
