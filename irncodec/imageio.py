"""Reading images and normalising their modes (tensor conversions: :mod:`irncodec.tensors`).

The network only sees 8-bit RGB. Every supported input mode is therefore split
into an RGB image, an optional alpha plane (stored losslessly beside the LR
image) and a "restore mode" ("L", "RGB", "LA" or "RGBA") so that decoding
gives back an image of the mode the user started with.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import metadata
from .errors import CodecError, FormatError, ImageError
from .lr_codecs.pillow import PNG_END

#: Modes split_alpha accepts, as listed in its error message.
SUPPORTED_MODES = (
    "1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr",
    "I;16", "I;16B", "I;16L", "I;16N", "I",
)
#: Modes restored on decoding.
RESTORE_MODES = ("L", "RGB", "LA", "RGBA")

_GREY_MODES = ("1", "L")
_GREY_ALPHA_MODES = ("LA", "La")
_RGBA_MODES = ("PA", "RGBA", "RGBa")
_RGB_MODES = ("RGB", "RGBX", "CMYK", "YCbCr")
_WIDE_GREY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


# --- loading ---------------------------------------------------------------------

def load_image(source: str | os.PathLike | BinaryIO, frame: int | None = None) -> Image.Image:
    """Read an image file fully into memory, upright, or raise ImageError.

    The pixels are decoded now (not lazily) so that a bad file fails here with
    a clear message rather than deep inside the codec, and the EXIF orientation
    is applied so the image is encoded the way viewers show it; ``info["exif"]``
    then says Orientation 1 (see :mod:`irncodec.metadata`), and
    ``info["icc_profile"]`` is the file's profile. Pillow's decompression-bomb
    limit (``Image.MAX_IMAGE_PIXELS``) stays on: images over it are refused
    rather than risking memory exhaustion.

    A file of several frames (animated GIF, WebP or PNG, multi-page TIFF) is
    an ImageError unless ``frame`` (0 for the first) picks one: see :func:`select_frame`.
    """
    if isinstance(source, (str, os.PathLike)):
        name = os.fsdecode(os.fspath(source))
        fp = _open_file(source, name)
        with fp:
            return _read_image(fp, name, frame)
    return _read_image(source, getattr(source, "name", "<stream>"), frame)


def _open_file(path: str | os.PathLike, name: str) -> BinaryIO:
    """Open a path for reading, turning OS errors into one-line ImageErrors."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise ImageError(f"no such file: {name}") from None
    except IsADirectoryError:
        raise ImageError(f"{name} is a directory, not an image file") from None
    except PermissionError:
        raise ImageError(f"permission denied: {name}") from None
    except OSError as err:
        raise ImageError(f"cannot open {name}: {err.strerror or err}") from None


def _read_image(fp: BinaryIO, name: str, frame: int | None) -> Image.Image:
    """Decode one frame of an open file and apply its EXIF orientation."""
    fp = _seekable(fp, name)
    if _is_empty(fp, name):
        raise ImageError(f"empty file: {name}")
    with warnings.catch_warnings():
        # Pillow only warns between 1x and 2x the pixel limit; refuse those too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(fp) as img:
                select_frame(img, frame, name)
                img.load()
                exif = img.info.get("exif")
                try:
                    upright = ImageOps.exif_transpose(img)  # a copy, detached from fp
                except SyntaxError:  # EXIF that is not a TIFF structure: no orientation to apply
                    upright = img.copy()  # (and exif_tiff below drops it), as viewers do
                upright.info.pop("exif", None)  # Pillow's rewrite, if it turned the image
                if tiff := metadata.exif_tiff(exif):
                    upright.info["exif"] = metadata.EXIF_PREFIX + metadata.reset_orientation(tiff)
                return upright
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise ImageError(f"image too large: {name} ({err})") from None
        except UnidentifiedImageError:
            raise ImageError(f"cannot identify image file {name}: not an image, "
                             "or a format Pillow cannot read") from None
        except Exception as err:
            raise ImageError(f"cannot read image {name}: {err}") from err


#: Multi-Picture (MPO) types of pictures that are views of their own, not previews
#: or auxiliary images (CIPA DC-007: panorama, disparity, multi-angle).
_MPO_VIEW_TYPES = ("Multi-Frame Image (Panorama)", "Multi-Frame Image: (Disparity)",
                   "Multi-Frame Image: (Multi-Angle)")


def frame_count(img: Image.Image) -> int:
    """How many images a file holds that encoding must choose between.

    Every frame of an animation or page of a TIFF counts. A JPEG with
    Multi-Picture data (MPO) whose other pictures are only previews or
    auxiliary images (large thumbnails, gain maps: what cameras and phones
    add) is one image, its primary picture, which every JPEG viewer shows.
    """
    frames = getattr(img, "n_frames", 1)
    if frames > 1 and img.format == "MPO":
        entries = getattr(img, "mpinfo", {}).get(0xB002, [])
        types = [entry.get("Attribute", {}).get("MPType") for entry in entries[1:]]
        if not any(t in _MPO_VIEW_TYPES for t in types):
            return 1
    return frames


def select_frame(img: Image.Image, frame: int | None, name: str) -> None:
    """Seek ``img`` to ``frame`` (0 for the first), checked against the frames it has.

    Without a frame, an image of several (``frame_count``) is an ImageError
    naming the choice to make: irncodec stores one image, and never drops the
    others without being told.
    """
    frames = getattr(img, "n_frames", 1)
    if frame is None:
        count = frame_count(img)
        if count > 1:
            kind = "pages" if img.format == "TIFF" else "frames"
            raise ImageError(f"{name} has {count} {kind} and an .irn file holds one image: choose one with "
                             f"--frame N (frame=N in Python), 0 for the first to {count - 1} for the last")
        return
    if not isinstance(frame, int) or isinstance(frame, bool) or not 0 <= frame < frames:
        has = "one frame, 0" if frames == 1 else f"{frames} frames, 0 to {frames - 1}"
        raise ImageError(f"{name} has no frame {frame!r}: it has {has}")
    if frame != img.tell():
        img.seek(frame)


#: Most bytes read from a stream that cannot seek (a pipe) before giving up:
#: such input is buffered in memory, so it must be bounded.
MAX_STREAM_BYTES = 1 << 30
_STREAM_CHUNK = 1 << 22


def _seekable(fp: BinaryIO, name: str) -> BinaryIO:
    """The stream itself if it can seek, else its bytes in memory (pipes, sockets),
    at most ``MAX_STREAM_BYTES`` of them."""
    try:
        if fp.seekable():
            return fp
        buffer = io.BytesIO()
        while chunk := fp.read(_STREAM_CHUNK):
            buffer.write(chunk)
            if buffer.tell() > MAX_STREAM_BYTES:
                raise ImageError(f"{name} is a stream of more than {MAX_STREAM_BYTES >> 20} MiB: "
                                 "no image file is that large (save it to a file if it really is)")
        buffer.seek(0)
        return buffer
    except (OSError, ValueError) as err:
        raise ImageError(f"cannot read {name}: {err}") from None


def _is_empty(fp: BinaryIO, name: str) -> bool:
    """Whether the stream holds nothing. Pillow reads an image from the stream's first
    byte wherever its position is (a BytesIO just written to opens), so this looks there."""
    try:
        fp.seek(0)
        empty = not fp.read(1)
        fp.seek(0)
    except (OSError, ValueError) as err:
        raise ImageError(f"cannot read {name}: {err}") from None
    return empty


# --- modes and alpha ---------------------------------------------------------------

def split_alpha(img: Image.Image) -> tuple[Image.Image, Image.Image | None, str]:
    """Split an image into (RGB image, alpha plane or None, restore mode).

    The restore mode is what :func:`merge_alpha` rebuilds after decoding.
    Greyscale becomes RGB by replicating the grey; palette images with
    transparency and premultiplied modes go through (unpremultiplied) RGBA.

    16/32-bit greyscale ("I;16*", "I") is REDUCED TO 8 BITS, lossily: the
    codec is 8-bit, so values 0..65535 map to round(value * 255 / 65535)
    (mode "I" is clipped to 0..65535 first) and the image decodes as "L".
    Pillow already opens 16-bit RGB PNGs as 8-bit "RGB".
    """
    if img.width < 1 or img.height < 1:
        raise ImageError(f"image is empty ({img.width}x{img.height} pixels)")
    mode = img.mode
    if mode in _GREY_MODES:
        return img.convert("L").convert("RGB"), None, "L"
    if mode in _WIDE_GREY_MODES:
        return _wide_grey_to_8bit(img).convert("RGB"), None, "L"
    if mode in _GREY_ALPHA_MODES:
        return _split_grey_alpha(img)
    if mode in _RGBA_MODES or (mode == "P" and img.has_transparency_data):
        return _split_rgba(img)
    if mode == "P" or mode in _RGB_MODES:
        return img.convert("RGB"), None, "RGB"
    raise ImageError(f"unsupported image mode '{mode}': supported modes are {', '.join(SUPPORTED_MODES)}")


def _wide_grey_to_8bit(img: Image.Image) -> Image.Image:
    """16/32-bit grey to 8-bit "L": scale 0..65535 to 0..255, rounding to nearest."""
    values = np.clip(np.asarray(img).astype(np.int64), 0, 65535)
    # value * 255 / 65535 == value / 257, and value / 257 is never exactly x.5.
    return Image.fromarray(((values + 128) // 257).astype(np.uint8), "L")


def _split_grey_alpha(img: Image.Image) -> tuple[Image.Image, Image.Image, str]:
    la = img.convert("LA")
    return la.getchannel("L").convert("RGB"), la.getchannel("A"), "LA"


def _split_rgba(img: Image.Image) -> tuple[Image.Image, Image.Image, str]:
    rgba = img.convert("RGBA")
    return rgba.convert("RGB"), rgba.getchannel("A"), "RGBA"


def merge_alpha(rgb: Image.Image, alpha: Image.Image | None, mode: str) -> Image.Image:
    """Rebuild the image in its restore mode from decoded RGB and alpha.

    Raises FormatError when the mode and the presence of alpha disagree, as
    they only can in a corrupt or hand-made ``.irn`` file.
    """
    if mode not in RESTORE_MODES:
        raise FormatError(f"unknown image mode '{mode}': expected one of {', '.join(RESTORE_MODES)}")
    wants_alpha = mode in ("LA", "RGBA")
    if wants_alpha != (alpha is not None):
        raise FormatError(f"image mode '{mode}' {'needs' if wants_alpha else 'has no'} alpha plane, "
                          f"but the file {'lacks one' if wants_alpha else 'stores one'}")
    if alpha is not None and alpha.size != rgb.size:
        raise FormatError(f"alpha plane is {alpha.width}x{alpha.height}, image is {rgb.width}x{rgb.height}")
    if mode == "RGB":
        return rgb
    if mode == "L":
        return rgb.convert("L")
    assert alpha is not None  # checked above: the mode has an alpha plane
    if mode == "LA":
        return Image.merge("LA", (rgb.convert("L"), alpha))
    return Image.merge("RGBA", (*rgb.split(), alpha))


def encode_alpha(alpha: Image.Image) -> bytes:
    """An alpha plane as a lossless, metadata-free PNG (transparency must be exact)."""
    if alpha.mode != "L":
        raise ValueError(f"alpha plane must have mode 'L', not '{alpha.mode}'")
    bare = Image.frombytes("L", alpha.size, alpha.tobytes())  # drops any info/metadata
    out = io.BytesIO()
    bare.save(out, format="PNG", optimize=True, compress_level=9)
    return out.getvalue()


def decode_alpha(data: bytes, size: tuple[int, int]) -> Image.Image:
    """The alpha plane stored by :func:`encode_alpha`; CodecError unless a mode-L PNG of ``size``."""
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
            if img.mode != "L" or img.size != tuple(size):
                raise CodecError(f"alpha plane is a {img.width}x{img.height} '{img.mode}' PNG, "
                                 f"expected {size[0]}x{size[1]} 'L'")
            if not data.endswith(PNG_END):  # Pillow accepts a PNG cut after its pixel data
                raise CodecError("alpha plane is not a complete PNG (truncated, or followed by extra bytes)")
            img.load()
            return img.copy()
    except CodecError:
        raise
    except UnidentifiedImageError:
        raise CodecError("alpha plane is not a PNG") from None
    except Exception as err:
        raise CodecError(f"alpha plane is not a valid PNG: {err}") from err
