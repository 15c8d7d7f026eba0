"""The SPHEREx image model and its FITS layout."""

from .errors import *
from .flags import *
from .spherex_image import *
from .spherex_image_fits import *
