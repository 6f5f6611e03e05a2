"""The LR codecs Pillow writes: PNG, JPEG and WebP.

Payloads are kept minimal (no EXIF, ICC or text chunks) and encoding is
deterministic: the same image and quality always give the same bytes.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from abc import abstractmethod
from typing import Any, ClassVar

from PIL import Image, UnidentifiedImageError

from ..errors import CodecError, FormatError
from .base import LRCodec, register_codec

#: The chunk every PNG stream ends with (length 0, "IEND", CRC).
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: irncodec's PNG chunk: ancillary, private, unsafe to copy (an editor that changes
#: the image must drop it), so viewers skip it.
PNG_CHUNK = b"irNC"
#: irncodec's JPEG segments: APP9, opening with this tag and a u16 index and count.
JPEG_APP = 0xE9
JPEG_TAG = b"irncodec\0"
_JPEG_PIECE = 65535 - 2 - len(JPEG_TAG) - 4
#: irncodec's WebP chunk (an extended-format file: VP8X first, this chunk last).
WEBP_CHUNK = b"IRNC"

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
            with warnings.catch_warnings():  # a huge declared size is refused below, not warned about
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(data), formats=[self.pil_format])
            with img:
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

    suffixes = (".png",)

    @classmethod
    def embed(cls, payload: bytes, carried: bytes) -> bytes:
        if not (payload.startswith(PNG_SIGNATURE) and payload.endswith(PNG_END)):
            raise CodecError("the LR payload is not a complete PNG stream")
        chunk = struct.pack(">I", len(carried)) + PNG_CHUNK + carried
        chunk += struct.pack(">I", zlib.crc32(chunk[4:]))
        return payload[:-len(PNG_END)] + chunk + PNG_END

    @classmethod
    def extract(cls, data: bytes) -> tuple[bytes, bytes | None] | None:
        if not data.startswith(PNG_SIGNATURE):
            return None
        kept, carried, pos = [PNG_SIGNATURE], None, len(PNG_SIGNATURE)
        while pos + 12 <= len(data):
            length, kind = struct.unpack_from(">I4s", data, pos)
            end = pos + 12 + length
            if kind == PNG_CHUNK and end <= len(data):
                carried = data[pos + 8:end - 4]
            else:
                kept.append(data[pos:end])
            pos = end
        kept.append(data[pos:])
        return b"".join(kept), carried


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

    suffixes = (".jpg", ".jpeg")

    @classmethod
    def embed(cls, payload: bytes, carried: bytes) -> bytes:
        if not payload.startswith(b"\xff\xd8"):
            raise CodecError("the LR payload is not a JPEG stream")
        pieces = [carried[i:i + _JPEG_PIECE] for i in range(0, len(carried), _JPEG_PIECE)] or [b""]
        if len(pieces) > 0xFFFF:
            raise CodecError("too much irncodec data for JPEG segments")
        segments = b"".join(struct.pack(">BBH", 0xFF, JPEG_APP, 2 + len(JPEG_TAG) + 4 + len(piece)) + JPEG_TAG
                            + struct.pack(">HH", i, len(pieces)) + piece for i, piece in enumerate(pieces))
        at = 2  # after SOI, and after a JFIF APP0 segment, which must come first
        if payload[2:4] == b"\xff\xe0":
            at = 4 + int.from_bytes(payload[4:6], "big")
        return payload[:at] + segments + payload[at:]

    @classmethod
    def extract(cls, data: bytes) -> tuple[bytes, bytes | None] | None:
        if not data.startswith(b"\xff\xd8"):
            return None
        kept, pieces, counts, pos = [data[:2]], {}, set(), 2
        while pos + 4 <= len(data) and data[pos] == 0xFF and data[pos + 1] not in (0xDA, 0xD9, 0xFF, 0x01) \
                and not 0xD0 <= data[pos + 1] <= 0xD7:  # segments with a length, up to the scan
            end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
            body = data[pos + 4:end]
            if data[pos + 1] == JPEG_APP and body.startswith(JPEG_TAG) and len(body) >= len(JPEG_TAG) + 4:
                index, count = struct.unpack_from(">HH", body, len(JPEG_TAG))
                pieces[index] = body[len(JPEG_TAG) + 4:]
                counts.add(count)
            else:
                kept.append(data[pos:end])
            pos = end
        kept.append(data[pos:])
        if not pieces:
            return b"".join(kept), None
        if len(counts) != 1 or sorted(pieces) != list(range(counts.pop())):
            raise FormatError("the irncodec data in this JPEG is incomplete (segments missing or repeated)")
        return b"".join(kept), b"".join(pieces[i] for i in sorted(pieces))


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

    suffixes = (".webp",)

    @classmethod
    def embed(cls, payload: bytes, carried: bytes) -> bytes:
        chunks = _riff_chunks(payload)
        if chunks is None or [kind for kind, _ in chunks] not in ([b"VP8 "], [b"VP8L"]):
            raise CodecError("the LR payload is not a simple-format WebP stream")
        try:
            with Image.open(io.BytesIO(payload), formats=["WEBP"]) as img:
                width, height = img.size
        except (OSError, ValueError, SyntaxError) as err:  # Pillow's errors for a damaged stream
            raise CodecError(f"the LR payload is not a valid WebP stream: {err}") from None
        vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (width - 1).to_bytes(3, "little") \
            + (height - 1).to_bytes(3, "little")
        body = b"WEBP" + vp8x + payload[12:] + _riff_chunk(WEBP_CHUNK, carried)
        return b"RIFF" + struct.pack("<I", len(body)) + body

    @classmethod
    def extract(cls, data: bytes) -> tuple[bytes, bytes | None] | None:
        chunks = _riff_chunks(data)
        if chunks is None:
            return None
        carried = next((chunk[8:8 + int.from_bytes(chunk[4:8], "little")] for kind, chunk in chunks
                        if kind == WEBP_CHUNK), None)
        if carried is None:
            return data, None
        body = b"WEBP" + b"".join(chunk for kind, chunk in chunks if kind not in (b"VP8X", WEBP_CHUNK))
        return b"RIFF" + struct.pack("<I", len(body)) + body, carried


def _riff_chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2)


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]] | None:
    """A WebP file's chunks (fourcc, whole chunk with its padding), or None if it is not one;
    bytes after a chunk that runs past the end stay in a last chunk as they are."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        end = pos + 8 + int.from_bytes(data[pos + 4:pos + 8], "little")
        end += end % 2
        chunks.append((data[pos:pos + 4], data[pos:end]))
        pos = end
    if pos < len(data):
        chunks.append((b"", data[pos:]))
    return chunks
