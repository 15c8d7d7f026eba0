"""SPHEREx Level-2 spectral images as IRSA publishes them: the image (plus zodi, PSF and wavelength
lookup), its PSF zones and calibration products, and their FITS reader and writer.
"""
