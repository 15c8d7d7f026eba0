"""SPHEREx PipelineTasks."""

from .subtract import *
from .spectrophotometry import *
from .spectrophotometry_gather import *
