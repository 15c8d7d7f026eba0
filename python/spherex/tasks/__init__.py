"""SPHEREx PipelineTasks."""

from . import spectrophotometry, spectrophotometry_gather, subtract
from .spectrophotometry import *
from .spectrophotometry_gather import *
from .subtract import *
from .subtract import SubtractConfig, SubtractConnections

# The 2020 proof of concept's names of the subtract task's classes (the task kept its name).
SubtractTaskConnections = SubtractConnections
SubtractTaskConfig = SubtractConfig

__all__ = [
    *subtract.__all__,
    *spectrophotometry.__all__,
    *spectrophotometry_gather.__all__,
    "SubtractTaskConfig",
    "SubtractTaskConnections",
]
