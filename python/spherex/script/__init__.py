"""The work behind the package's command-line tools, callable from Python."""

from .archive_find import *
from .compat_2020 import *
from .find_spectral_images import *
from .ingest.level2 import *
from .ingest.simulated import *
from .ingest.targets import *
from .spectrum import *
