"""`SPHERExImage` (image, variance, flags, WCS, metadata) and its FITS reader and writer."""
