"""The generic FITS machinery: opening and checking files, one cached scan of where the HDUs are, plain
pixel reads, header helpers, flag definitions, and the read and write options the formatters take.
"""
