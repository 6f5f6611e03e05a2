"""LR codecs: how the small RGB image the network makes is stored in an ``.irn`` file.

Each codec is a class registered under a short name (written in the file's
header), so new coders, such as a learned entropy coder, can join with
``@register_codec`` without touching the container or the CLI.

Payloads are kept minimal (no EXIF, ICC or text chunks) and encoding is
deterministic: the same image and quality always give the same bytes.
"""

from __future__ import annotations

import inspect
import io
import operator
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from PIL import Image, UnidentifiedImageError

from .errors import CodecError

_REGISTRY: dict[str, type[LRCodec]] = {}

#: The chunk every PNG stream ends with (length 0, "IEND", CRC).
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


class LRCodec(ABC):
    """Stores an 8-bit RGB image as bytes and reads it back."""

    name: ClassVar[str]
    lossless: ClassVar[bool]
    #: Whether each quality is its own jointly trained model (the zoo picks it),
    #: rather than a setting of one codec applied to any model's LR image.
    per_level_models: ClassVar[bool] = False
    min_quality: ClassVar[int]
    max_quality: ClassVar[int]
    default_quality: ClassVar[int]

    def validate_quality(self, quality: int) -> int:
        """The quality to store in the header; CodecError if out of range.

        Lossless codecs have no quality, so any integer maps to 0.
        """
        quality = _as_int(quality)
        if self.lossless:
            return 0
        if not self.min_quality <= quality <= self.max_quality:
            raise CodecError(f"{self.name} quality must be {self.min_quality}..{self.max_quality}, got {quality}")
        return quality

    @abstractmethod
    def encode(self, image: Image.Image, quality: int) -> bytes:
        """The payload for an 8-bit RGB image."""

    @abstractmethod
    def decode(self, data: bytes, size: tuple[int, int]) -> Image.Image:
        """The RGB image of ``size`` (width, height) in a payload of this codec.

        Raises CodecError if the payload is not a complete, valid stream of
        this codec's format, or is not exactly ``size``.
        """

    def encode_with_reconstruction(self, image: Image.Image, quality: int) -> tuple[bytes, Image.Image]:
        """The payload and the image a decoder will get from it (codecs that know it sooner override this)."""
        data = self.encode(image, quality)
        return data, self.decode(data, image.size)


def _as_int(quality: Any) -> int:
    """``quality`` as an int (numpy ints too), or CodecError for floats, strings, bools."""
    if isinstance(quality, bool):
        raise CodecError(f"quality must be an integer, got {quality!r}")
    try:
        return operator.index(quality)
    except TypeError:
        raise CodecError(f"quality must be an integer, got {quality!r}") from None


# --- registry ----------------------------------------------------------------------

def register_codec(cls: type[LRCodec]) -> type[LRCodec]:
    """Class decorator: make ``cls`` available to :func:`get_codec` under ``cls.name``."""
    existing = _REGISTRY.get(cls.name)
    if existing is not None and _qualified(existing) != _qualified(cls):
        raise ValueError(f"LR codec name '{cls.name}' is already taken by {_qualified(existing)}")
    _REGISTRY[cls.name] = cls
    return cls


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def available_codecs() -> list[str]:
    """Names of the registered LR codecs, sorted."""
    return sorted(_REGISTRY)


def get_codec(name: str, **options: Any) -> LRCodec:
    """A codec instance by name; ``options`` go to its constructor (e.g. jpeg's subsampling)."""
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise CodecError(f"unknown LR codec {name!r}: choose from {', '.join(available_codecs())}")
    try:
        inspect.signature(cls).bind(**options)
    except TypeError:
        raise CodecError(f"LR codec '{name}' does not take option(s) {', '.join(sorted(options))}") from None
    return cls(**options)


# --- Pillow codecs -------------------------------------------------------------------

class PillowCodec(LRCodec):
    """Shared encode/decode for the image formats Pillow writes."""

    #: Pillow's format name, also the only format accepted when decoding.
    pil_format: ClassVar[str]
    #: Largest width or height the format can store.
    max_side: ClassVar[int]

    def encode(self, image: Image.Image, quality: int) -> bytes:
        self._check_image(image)
        quality = self.validate_quality(quality)
        bare = Image.frombytes("RGB", image.size, image.tobytes())  # no info, so no metadata
        out = io.BytesIO()
        try:
            bare.save(out, format=self.pil_format, **self.save_options(quality))
        except (OSError, ValueError) as err:
            raise CodecError(f"{self.name} cannot encode this {image.width}x{image.height} image: {err}") from err
        return out.getvalue()

    @abstractmethod
    def save_options(self, quality: int) -> dict[str, Any]:
        """Keyword arguments for ``Image.save`` at a validated quality."""

    def _check_image(self, image: Image.Image) -> None:
        if image.mode != "RGB":
            raise CodecError(f"LR codecs store 8-bit RGB images, got mode '{image.mode}'")
        width, height = image.size
        if not (1 <= width <= self.max_side and 1 <= height <= self.max_side):
            raise CodecError(f"{self.name} stores images of 1..{self.max_side} pixels a side, "
                             f"this LR image is {width}x{height}")

    def decode(self, data: bytes, size: tuple[int, int]) -> Image.Image:
        try:
            with Image.open(io.BytesIO(data), formats=[self.pil_format]) as img:
                self._check_decoded(img, size)
                if not self.is_complete(data):
                    raise CodecError(f"LR payload is not a complete {self.name} stream "
                                     "(truncated, or followed by extra bytes)")
                img.load()
                return img.copy()
        except CodecError:
            raise
        except UnidentifiedImageError:
            raise CodecError(f"LR payload is not a {self.name} stream") from None
        except Exception as err:
            raise CodecError(f"LR payload is not a valid {self.name} stream: {err}") from err

    @staticmethod
    @abstractmethod
    def is_complete(data: bytes) -> bool:
        """Whether ``data`` ends exactly where the stream does.

        Pillow decodes some cut streams without complaint (a PNG without its
        end chunk), so truncation is checked on the bytes themselves.
        """

    def _check_decoded(self, img: Image.Image, size: tuple[int, int]) -> None:
        """Refuse payloads of the wrong size or mode before decoding their pixels."""
        if img.size != tuple(size):
            raise CodecError(f"LR image is {img.width}x{img.height}, the header says {size[0]}x{size[1]}")
        if img.mode != "RGB":
            raise CodecError(f"LR image has mode '{img.mode}', expected 'RGB'")


@register_codec
class PngCodec(PillowCodec):
    """Lossless PNG at maximum compression: exact LR pixels, large files."""

    name = "png"
    lossless = True
    min_quality = max_quality = default_quality = 0
    pil_format = "PNG"
    max_side = 2**31 - 1

    def save_options(self, quality: int) -> dict[str, Any]:
        return {"optimize": True, "compress_level": 9}

    @staticmethod
    def is_complete(data: bytes) -> bool:
        return data.endswith(PNG_END)


@register_codec
class JpegCodec(PillowCodec):
    """Baseline JPEG with optimised Huffman tables; chroma subsampling is an option."""

    name = "jpeg"
    lossless = False
    min_quality, max_quality, default_quality = 1, 100, 75
    pil_format = "JPEG"
    max_side = 65535
    SUBSAMPLINGS: ClassVar[tuple[str, ...]] = ("4:2:0", "4:2:2", "4:4:4")

    def __init__(self, subsampling: str = "4:2:0") -> None:
        if subsampling not in self.SUBSAMPLINGS:
            raise CodecError(f"unknown JPEG subsampling {subsampling!r}: choose from {', '.join(self.SUBSAMPLINGS)}")
        self.subsampling = subsampling

    def save_options(self, quality: int) -> dict[str, Any]:
        return {"quality": quality, "subsampling": self.subsampling, "optimize": True, "progressive": False}

    @staticmethod
    def is_complete(data: bytes) -> bool:
        return data.endswith(b"\xff\xd9")  # the End Of Image marker


@register_codec
class WebpCodec(PillowCodec):
    """Lossy WebP. method=6 is libwebp's slowest, best-compressing setting:
    encoding takes longer but files are smaller (LR images are small anyway)."""

    name = "webp"
    lossless = False
    min_quality, max_quality, default_quality = 0, 100, 75
    pil_format = "WEBP"
    max_side = 16383

    def save_options(self, quality: int) -> dict[str, Any]:
        return {"quality": quality, "method": 6, "lossless": False}

    @staticmethod
    def is_complete(data: bytes) -> bool:
        # A RIFF header gives the size of everything after its first 8 bytes.
        return len(data) >= 12 and int.from_bytes(data[4:8], "little") + 8 == len(data)


# --- learned entropy coding ----------------------------------------------------------

@register_codec
class EntropyCodec(LRCodec):
    """The learned entropy coder of an ``lr_coder: hyperprior`` model (CompressAI's rANS).

    Unlike the Pillow codecs it needs the model's coder to encode and decode,
    so it is built with one: ``get_codec("entropy", coder=model.lr_coder)``.
    Its quality is a rate level (1 = smallest files), in the style of
    CompressAI's zoo: each level is its own jointly trained model, and the
    zoo picks the model for a level (:func:`irncodec.zoo.default_model`).
    """

    name = "entropy"
    lossless = False
    per_level_models = True
    min_quality, max_quality, default_quality = 1, 8, 2

    def __init__(self, coder: Any = None) -> None:
        self.coder = coder

    def _ready_coder(self) -> Any:
        if self.coder is None or not self.coder.is_ready:
            raise CodecError("the entropy LR codec needs a model with a trained entropy coder "
                             "(see 'irncodec models')")
        return self.coder

    def encode(self, image: Image.Image, quality: int) -> bytes:
        return self.encode_with_reconstruction(image, quality)[0]

    def encode_with_reconstruction(self, image: Image.Image, quality: int) -> tuple[bytes, Image.Image]:
        """The payload and the LR image a decoder will get from it (bit-exact on this machine)."""
        import numpy as np
        import torch

        from .imageio import pixels_to_tensor, tensor_to_pixels  # imageio imports this module

        self.validate_quality(quality)
        coder = self._ready_coder()
        if image.mode != "RGB":
            raise CodecError(f"LR codecs store 8-bit RGB images, got mode '{image.mode}'")
        with torch.no_grad():
            coded = coder.compress(pixels_to_tensor(np.asarray(image), next(coder.parameters()).device))
        return coded.payload, Image.fromarray(tensor_to_pixels(coded.lr_hat), "RGB")

    def decode(self, data: bytes, size: tuple[int, int]) -> Image.Image:
        import torch

        from .imageio import tensor_to_pixels
        from .models.lr_coder import StreamError

        coder = self._ready_coder()
        width, height = size
        try:
            with torch.no_grad():
                lr = coder.decompress(bytes(data), (height, width))
        except (StreamError, RuntimeError, ValueError, OverflowError) as err:
            raise CodecError(f"LR payload is not a valid entropy-coded stream: {err}") from None
        return Image.fromarray(tensor_to_pixels(lr), "RGB")

