"""``spherex-demo``: from nothing to processed images in one command."""

from .graph import *
from .pipetask import *
from .plots import *
from .run import *
