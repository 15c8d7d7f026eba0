"""The 2020 proof of concept's module path of `CCDDataFormatter` (``spherex.formatters.ccddata``).

Datastore records written by 2020 repositories name ``spherex.formatters.ccddata_image.CCDDataFormatter``;
this alias lets them read.  The other 2020 formatter paths, ``spherex.formatters.astropy_image`` and
``spherex.formatters.spherex_image``, are the modules that define those formatters today.
"""

from .ccddata import CCDDataFormatter

__all__ = ["CCDDataFormatter"]
