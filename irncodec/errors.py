"""The errors irncodec raises for problems a user can fix.

Every user-facing failure (bad file, unsupported image, missing weights) is an
``IrnError`` so that callers, and the CLI, can catch one type and print one line.
Anything else escaping the library is a bug.
"""


class IrnError(Exception):
    """Base class for all errors caused by input, options or environment."""


class FormatError(IrnError):
    """An ``.irn`` file is corrupt, truncated, of an unknown version or absurd."""


class PayloadChecksumError(FormatError):
    """An ``.irn`` file's payload or alpha plane is not the one its header's CRC was made for."""


class ImageError(IrnError):
    """An input image cannot be read or has an unsupported mode or size."""


class ModelError(IrnError):
    """A model name is unknown, or its weights are missing or invalid."""


class CodecError(IrnError):
    """An LR codec name, quality or option is invalid, or its payload is bad."""


class ConfigError(IrnError):
    """A training configuration file is missing, malformed or inconsistent."""


class OutputError(IrnError):
    """An output file cannot be written (missing folder, permissions, full disk)."""
