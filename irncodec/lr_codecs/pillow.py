"""The LR codecs Pillow writes: PNG, JPEG and WebP.

Payloads are kept minimal (no EXIF, ICC or text chunks) and encoding is
deterministic: the same image and quality always give the same bytes.
"""

from __future__ import annotations

import io
from abc import abstractmethod
from typing import Any, ClassVar

from PIL import Image, UnidentifiedImageError

from ..errors import CodecError
from .base import LRCodec, register_codec

#: The chunk every PNG stream ends with (length 0, "IEND", CRC).
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"

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
    file_id = 0
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
    file_id = 1
    lossless = False
    min_quality, max_quality, default_quality = 1, 100, 75
    pil_format = "JPEG"
    max_side = 65535
    SUBSAMPLINGS: ClassVar[tuple[str, ...]] = ("4:2:0", "4:2:2", "4:4:4")
    options: ClassVar[dict[str, tuple[str, ...]]] = {"subsampling": SUBSAMPLINGS}

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
    file_id = 2
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
