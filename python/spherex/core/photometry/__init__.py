"""The PSF on image pixels and the units of point-source photometry, shared by the simulator and the
forced spectrophotometry.
"""
