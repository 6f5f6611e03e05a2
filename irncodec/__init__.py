"""irncodec: lossy image compression by Invertible Image Rescaling (IRN).

>>> import irncodec
>>> data = irncodec.encode("photo.png", quality=90)      # .irn bytes
>>> image = irncodec.decode(data)                        # PIL.Image

Names are imported on first use, so ``import irncodec`` (and the CLI's
``--help``) stay fast and do not load torch until needed. Importing it also
registers the ``.irn`` format with Pillow (:mod:`irncodec.pillow_plugin`):
``Image.open("x.irn")``, ``im.save("x.irn", quality=75)``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.5.0"

_EXPORTS = {
    "encode": "codec", "decode": "codec", "decode_lr": "codec", "downscale": "codec", "upscale": "codec",
    "Header": "container", "IrnFile": "container",
    "IRN": "models", "IRNConfig": "models",
    "load_model": "zoo", "available_models": "zoo",
    "IrnError": "errors", "FormatError": "errors", "PayloadChecksumError": "errors", "ImageError": "errors",
    "ModelError": "errors", "CodecError": "errors", "ConfigError": "errors", "OutputError": "errors",
}

__all__ = sorted(_EXPORTS)

from . import pillow_plugin  # noqa: E402  (after the names it does not need)

pillow_plugin.register()


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'irncodec' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
