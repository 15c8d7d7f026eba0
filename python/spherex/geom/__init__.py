"""Sky geometry for the dimension universe: the HEALPix pixelization its common skypix uses."""

from .footprint import *
from .healpix_pixelization import *
