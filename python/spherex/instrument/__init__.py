"""SPHEREx instruments (`lsst.pipe.base.Instrument` subclasses) and the detector table."""

from ._instrument import *
from .detectors import *
from .observation import *
