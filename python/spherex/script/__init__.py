"""The work behind the package's command-line tools, callable from Python."""

from .compat_2020 import *
from .find_spectral_images import *
from .ingest_simulated import *
from .ingest_spherex import *
from .ingest_targets import *
from .spectrum import *
