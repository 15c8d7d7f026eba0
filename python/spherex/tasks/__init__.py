"""SPHEREx PipelineTasks."""

from . import subtract
from .subtract import *
from .subtract import SubtractConfig, SubtractConnections

# The 2020 proof of concept's names of the subtract task's classes (the task kept its name).
SubtractTaskConnections = SubtractConnections
SubtractTaskConfig = SubtractConfig

__all__ = [*subtract.__all__, "SubtractTaskConfig", "SubtractTaskConnections"]
