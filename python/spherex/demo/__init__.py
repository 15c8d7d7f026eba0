"""``spherex-demo``: from nothing to processed images in one command."""

from .plots import *
from .run import *
