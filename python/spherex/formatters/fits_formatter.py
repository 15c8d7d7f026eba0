"""What the package's FITS formatters share: extensions, write parameters and recipes, type checks."""

from __future__ import annotations

__all__ = ["FitsFormatter"]

from collections.abc import Mapping
from typing import Any

from lsst.daf.butler import FormatterV2

from ..core import FitsWriteOptions


class FitsFormatter(FormatterV2):
    """Base of the FITS formatters: file extensions, tile-compression write parameters and recipes.

    Write parameters: ``compression`` (tile-compression algorithm, e.g. ``RICE_1`` or ``GZIP_2``),
    ``quantize_level``, ``checksum`` and ``recipe`` (a named set of these in the ``write_recipes``
    section of the datastore formatters configuration); see `spherex.core.FitsWriteOptions`.
    """

    default_extension = ".fits"
    supported_extensions = frozenset({".fits", ".fit", ".fts", ".fits.fz"})
    unsupported_parameters = None
    supported_write_parameters = FitsWriteOptions.write_parameters
    can_read_from_local_file = True

    @classmethod
    def validate_write_recipes(cls, recipes: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """Check the write recipes of the formatter configuration.

        Parameters
        ----------
        recipes : `~collections.abc.Mapping`, optional
            Recipe name to options (``compression``, ``quantize_level``, ``checksum``).

        Returns
        -------
        recipes : `dict`
            The validated recipes.

        Raises
        ------
        RuntimeError
            Raised if a recipe holds unknown or invalid options.
        """
        return FitsWriteOptions.validate_recipes(recipes)

    def write_options(self) -> FitsWriteOptions:
        """Return the write options of this formatter's write parameters and recipes.

        Returns
        -------
        options : `spherex.core.FitsWriteOptions`
            Compression, quantization and checksum settings.

        Raises
        ------
        spherex.core.SPHERExImageError
            Raised if the write parameters are invalid.
        """
        return FitsWriteOptions.from_parameters(self.write_parameters, self.write_recipes)

    def check_type(self, in_memory_dataset: Any, expected: type, type_name: str) -> None:
        """Refuse to write a dataset that is not of the formatter's Python type.

        Parameters
        ----------
        in_memory_dataset : `typing.Any`
            The dataset given to ``put``.
        expected : `type`
            The type this formatter writes.
        type_name : `str`
            How to name it in the message.

        Raises
        ------
        TypeError
            Raised if ``in_memory_dataset`` is not an instance of ``expected``; the message names the
            dataset type and data ID.
        """
        if not isinstance(in_memory_dataset, expected):
            raise TypeError(
                f"Dataset {self.dataset_ref.datasetType.name} {self.data_id} must be "
                f"{type_name} to be written by {self.name()}, not {type(in_memory_dataset).__name__}"
            )
