"""Butler formatter for `spherex.core.SPHERExImage` datasets (FITS)."""

from __future__ import annotations

__all__ = ["SPHERExImageFormatter"]

from typing import Any, ClassVar

from lsst.resources import ResourcePath

from ..archive import allow_anonymous
from ..core import SPHERExImage
from .fits_formatter import FitsFormatter
from .range_reads import open_byte_ranges


class SPHERExImageFormatter(FitsFormatter):
    """Read and write `~spherex.core.SPHERExImage` datasets as FITS files in the SPHEREx layout.

    Components (``image``, ``variance``, ``flags``, ``mask``, ``wcs``, ``metadata``) are read from their
    own HDU only.  The ``slices`` read parameter (a tuple of Python slices in numpy order) returns a
    cutout of every plane with a sliced WCS, reading only the rows the cutout spans (one read per
    plane) or, for tile-compressed files, only the tiles needed; headers and the WCS come from the
    reader's per-file cache.  The ``cutouts`` component with the ``boxes`` parameter (a list of such
    tuples) returns a list of cutouts from one pass over the rows they span (one read per merged row
    range and plane), the headers, WCS and PSF parsed once.  From a remote datastore (S3, HTTP) components and
    cutouts are read by byte ranges, without downloading the file (see `read_from_uri`); whole images
    are downloaded, through the datastore's cache.

    Write parameters: ``compression`` (tile-compression algorithm, e.g. ``RICE_1`` or ``GZIP_2``),
    ``quantize_level``, ``checksum`` and ``recipe`` (a named set of these in the ``write_recipes``
    section of the datastore formatters configuration); see `spherex.core.FitsWriteOptions`.

    Notes
    -----
    The FITS layout is the image class's (`~spherex.core.SPHERExImage.fits_reader_class` and
    ``fits_writer_class``): a storage class whose type is a `~spherex.core.SPHERExImage` subclass with a
    richer layout (SPHEREx Level-2 images) reads and writes that layout with this formatter unchanged.
    """

    unsupported_parameters = frozenset()
    can_read_from_uri = True

    image_class: ClassVar[type[SPHERExImage]] = SPHERExImage
    """Python type written; reads build the storage class type when it is a subclass of this."""

    def read_from_local_file(self, path: str, component: str | None = None, expected_size: int = -1) -> Any:
        """Read the dataset from a local file.

        Parameters
        ----------
        path : `str`
            Local file.
        component : `str`, optional
            Component to read; the whole image if `None`.
        expected_size : `int`, optional
            Size recorded by the datastore (checked by the caller).

        Returns
        -------
        dataset : `typing.Any`
            The `~spherex.core.SPHERExImage` (a cutout with the ``slices`` parameter), or the
            requested component (`None` for a plane the file does not have).

        Raises
        ------
        FileNotFoundError
            Raised if the file does not exist.
        spherex.core.FitsLayoutError
            Raised if the file is not FITS, is truncated, or does not hold what this formatter reads.
        """
        parameters = self.file_descriptor.parameters or {}
        slices = parameters.get("slices")
        image_class = self._read_type()
        partial = slices is not None or component == "cutouts"
        with image_class.fits_reader_class(path, memmap=partial) as reader:
            return self._read_with(reader, image_class, component)

    def read_from_uri(self, uri: ResourcePath, component: str | None = None, expected_size: int = -1) -> Any:
        """Read a component or a cutout of a remote file by byte ranges.

        Parameters
        ----------
        uri : `lsst.resources.ResourcePath`
            The file, local or remote.
        component : `str`, optional
            Component to read; the whole image if `None`.
        expected_size : `int`, optional
            Size recorded by the datastore, ``-1`` if unknown.

        Returns
        -------
        dataset : `typing.Any`
            As `read_from_local_file`, or `NotImplemented` for a local file or a whole image, which the
            datastore then reads with `read_from_local_file` (after a download through its cache).

        Raises
        ------
        FileNotFoundError
            Raised if the file does not exist.
        spherex.core.FitsLayoutError
            Raised if the file is not FITS, is truncated, or does not hold what this formatter reads.
        """
        parameters = self.file_descriptor.parameters or {}
        partial = parameters.get("slices") is not None or component == "cutouts"
        # The datastore downloads what this declines, through lsst-resources: unsigned for public buckets.
        allow_anonymous(uri)
        if uri.isLocal or (component is None and not partial):
            return NotImplemented
        image_class = self._read_type()
        # Only the headers, and the pixels of the HDU or the rows of the cutouts asked for, are fetched.
        with (
            open_byte_ranges(uri, size=expected_size) as stream,
            image_class.fits_reader_class(stream) as reader,
        ):
            return self._read_with(reader, image_class, component)

    def _read_with(self, reader: Any, image_class: type[SPHERExImage], component: str | None) -> Any:
        """Read what the component and parameters ask for from an open reader."""
        parameters = self.file_descriptor.parameters or {}
        slices, boxes = parameters.get("slices"), parameters.get("boxes")
        if component == "cutouts":
            if boxes is None or slices is not None:
                raise ValueError(
                    f"{reader.path}: the 'cutouts' component needs the 'boxes' parameter (a list of "
                    "tuples of slices), and does not take 'slices'"
                )
            return [image_class.from_parts(parts, reader.path) for parts in reader.read_cutouts(boxes)]
        if boxes is not None:
            raise ValueError(f"{reader.path}: the 'boxes' parameter goes with the 'cutouts' component")
        if component is not None:
            return reader.read_component(component, slices)
        return image_class.from_parts(reader.read_parts(slices), reader.path)

    def write_local_file(self, in_memory_dataset: Any, uri: ResourcePath) -> None:
        """Write the dataset to a local file.

        Parameters
        ----------
        in_memory_dataset : `~spherex.core.SPHERExImage`
            Dataset to write.
        uri : `lsst.resources.ResourcePath`
            Local file to write.

        Raises
        ------
        TypeError
            Raised if the dataset is not a `~spherex.core.SPHERExImage`.
        spherex.core.SPHERExImageError
            Raised if the write parameters are invalid or the dataset cannot be written to FITS.
        """
        self.check_type(in_memory_dataset, self.image_class, f"a {self.image_class.__name__}")
        writer = in_memory_dataset.fits_writer_class.from_options(self.write_options())
        writer.write(in_memory_dataset, uri.ospath, overwrite=True)

    def _read_type(self) -> type[SPHERExImage]:
        """Return the class to build: the storage class type when it is a SPHERExImage subclass."""
        pytype = self.file_descriptor.readStorageClass.pytype
        if isinstance(pytype, type) and issubclass(pytype, self.image_class):
            return pytype
        return self.image_class
