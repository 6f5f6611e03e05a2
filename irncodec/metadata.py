"""The metadata an ``.irn`` file carries about its image: ICC colour profile and EXIF.

Encoding keeps both unless told not to (``keep_metadata=False``, ``irncodec
encode --strip``). The ICC profile is stored as it is: pixels are never
colour-converted, the profile says how to read them. EXIF data is stored as
its TIFF structure; when the image is read from a file, the pixels are turned
upright first (:func:`irncodec.imageio.load_image`) and the stored EXIF says
so (its Orientation tag is set to 1, every other byte left as it was).
Decoding attaches both to the image (``info["icc_profile"]``,
``info["exif"]``, as Pillow names them), and ``irncodec decode`` writes them
into output formats that hold them. The byte layout is in docs/format.md.
"""

from __future__ import annotations

import struct

from PIL import Image

from .container import MAX_METADATA_CHUNK, TIFF_HEADERS, Metadata, metadata_problem
from .errors import ImageError

__all__ = ["EXIF_PREFIX", "Metadata", "from_image", "reset_orientation", "save_keywords", "to_info"]

#: What precedes the TIFF structure in a JPEG's APP1 segment and in Pillow's ``info["exif"]``.
EXIF_PREFIX = b"Exif\x00\x00"
ORIENTATION_TAG = 0x0112
_SHORT, _LONG = 3, 4
#: Output formats (Pillow names) whose files hold an ICC profile and EXIF data.
FORMATS_WITH_METADATA = ("JPEG", "PNG", "TIFF", "WEBP")
#: Most EXIF bytes a JPEG holds: one APP1 segment of 65533 data bytes, the prefix included.
MAX_JPEG_EXIF = 65533 - len(EXIF_PREFIX)


def exif_tiff(data: bytes | Image.Exif | None) -> bytes:
    """The TIFF structure of EXIF data as Pillow gives it (with or without the ``Exif\\0\\0``
    prefix, or an ``Image.Exif``), or b"" when it is none."""
    if isinstance(data, Image.Exif):
        data = data.tobytes()
    if not isinstance(data, (bytes, bytearray)):
        return b""
    data = bytes(data)
    if data.startswith(EXIF_PREFIX):
        data = data[len(EXIF_PREFIX):]
    return data if data.startswith(TIFF_HEADERS) else b""


def reset_orientation(tiff: bytes) -> bytes:
    """EXIF data (a TIFF structure) with its Orientation tag set to 1 (upright).

    Only the tag's value changes, so everything else (maker notes, thumbnail)
    keeps its place; data without the tag, or that cannot be followed to it,
    is returned as it is.
    """
    order = "<" if tiff[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(order + "I", tiff, 4)
        (count,) = struct.unpack_from(order + "H", tiff, ifd)
        for i in range(count):
            at = ifd + 2 + 12 * i
            tag, kind, n = struct.unpack_from(order + "HHI", tiff, at)
            if tag == ORIENTATION_TAG and n == 1 and kind in (_SHORT, _LONG):
                out = bytearray(tiff)
                struct.pack_into(order + ("H" if kind == _SHORT else "I"), out, at + 8, 1)
                return bytes(out)
    except struct.error:
        pass
    return tiff


def from_image(img: Image.Image) -> Metadata:
    """The ICC profile and EXIF data of an image's ``info``, as a file stores them.

    A block that is not what it claims (an ICC profile without its signature,
    EXIF data that is no TIFF structure) is left out: no reader could use it.
    One over the size an ``.irn`` file holds is an ImageError.
    """
    icc = img.info.get("icc_profile")
    icc = bytes(icc) if isinstance(icc, (bytes, bytearray)) else b""
    exif = exif_tiff(img.info.get("exif"))
    for label, data in (("ICC profile", icc), ("EXIF data", exif)):
        if len(data) > MAX_METADATA_CHUNK:
            raise ImageError(f"the image's {label} is {len(data)} bytes, more than the {MAX_METADATA_CHUNK} "
                             "an .irn file holds: encode without metadata (--strip, keep_metadata=False)")
    if icc and metadata_problem(Metadata(icc_profile=icc)):
        icc = b""
    return Metadata(icc_profile=icc, exif=exif)


def to_info(metadata: Metadata) -> dict[str, bytes]:
    """Metadata as Pillow's ``info`` keys: ``icc_profile``, and ``exif`` with the ``Exif\\0\\0`` prefix."""
    info = {}
    if metadata.icc_profile:
        info["icc_profile"] = metadata.icc_profile
    if metadata.exif:
        info["exif"] = EXIF_PREFIX + metadata.exif
    return info


def save_keywords(fmt: str, metadata: Metadata) -> tuple[dict[str, bytes], list[str]]:
    """Keywords for ``Image.save`` in Pillow format ``fmt`` that write ``metadata``,
    and what of it a ``fmt`` file cannot hold (``["ICC profile", "EXIF data"]`` for BMP)."""
    info = to_info(metadata)
    if fmt not in FORMATS_WITH_METADATA:
        return {}, [label for key, label in (("icc_profile", "ICC profile"), ("exif", "EXIF data")) if key in info]
    if fmt == "JPEG" and len(metadata.exif) > MAX_JPEG_EXIF:
        del info["exif"]
        return info, ["EXIF data"]  # over the 64 KiB a JPEG's EXIF segment holds
    return info, []
