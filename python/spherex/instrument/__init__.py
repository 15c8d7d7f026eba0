"""SPHEREx instruments (`lsst.pipe.base.Instrument` subclasses) and the detector table."""

from ._instrument import *
from .detectors import *
from .level2_files import *
from .observation import *
from .raw_file_check import *
from .spherex_instrument import *
