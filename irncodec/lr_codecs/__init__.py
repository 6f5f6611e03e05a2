"""LR codecs: how the small RGB image the network makes is stored in an ``.irn`` file.

Each codec is one class in one module, registered under a short name with
``@register_codec`` (see :mod:`.base`); the container, the zoo, the CLI and
the benchmarks ask the registry, so adding a codec touches its own module
(imported below) and its tests.
"""

from .base import (
           LRCodec,
           available_codecs,
           codec_class,
           codec_ids,
           codecs_with_option,
           get_codec,
           option_choices,
           register_codec,
)
from .entropy import EntropyCodec
from .pillow import JpegCodec, PillowCodec, PngCodec, WebpCodec

#: The codec ``encode`` uses when none is given.
DEFAULT_CODEC = "jpeg"

__all__ = ["DEFAULT_CODEC", "EntropyCodec", "JpegCodec", "LRCodec", "PillowCodec", "PngCodec", "WebpCodec",
           "available_codecs", "codec_class", "codec_ids", "codecs_with_option", "get_codec", "option_choices",
           "register_codec"]
