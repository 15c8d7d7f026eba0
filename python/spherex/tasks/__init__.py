"""SPHEREx PipelineTasks."""

from .spectrophotometry import *
from .spectrophotometry_gather import *
from .subtract import *
