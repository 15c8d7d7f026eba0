"""Simulated SPHEREx data: exposures of the six arrays and their dark frames (``spherex-simulate``).

The scene (`sky_model`), the survey geometry (`pointing`) and the arrays (`detector_model`) are kept
apart from the writing of files (`simulate`); the command line (`cli`) only parses options.
"""

from .detector_model import *  # noqa: F403
from .pointing import *  # noqa: F403
from .simulate import *  # noqa: F403
from .sky_model import *  # noqa: F403
