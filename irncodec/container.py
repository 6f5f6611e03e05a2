"""The ``.irn`` container: a small versioned header, the LR payload, an optional
alpha plane and optional metadata (ICC profile, EXIF).

Layout of versions 2 and 3 (little-endian; ``n`` is the model name's length; the full
byte table, validation rules and versioning policy are in ``docs/format.md``)::

    0      4  magic  b"\\x89IRN"
    4      1  version (2 or 3; 4 below; version 1 has no fingerprint and is still read)
    5      1  flags (bit 0: alpha plane present; bit 1, versions 4 and 5: metadata
              present; other bits must be 0)
    6      1  n, model name length (1..64)
    7      n  model name, ASCII [A-Za-z0-9._-]
    7+n   22  scale u8, width u32, height u32, mode u8, pad_x u8, pad_y u8,
              codec u8, quality u8, payload length u32, alpha length u32
    29+n   8  fingerprint of the model's weights (versions 2 to 4)
    37+n   4  CRC-32 of every header byte before it
    41+n   4  CRC-32 of payload bytes followed by alpha bytes
    45+n      payload, then alpha (PNG), then nothing

Version 4 inserts a u32 metadata length ``M`` at ``37+n`` (the CRCs move to
``41+n`` and ``45+n``, the payload to ``49+n``), and the file ends with a
metadata section of ``M`` bytes after the alpha plane, made of chunks (4-byte
tag, u32 length, data): ``ICCP`` then ``EXIF``, each at most once. The
payload CRC covers payload, alpha and metadata.

Version 5 (a scale that is not the network's, e.g. 1.5 with an x2 network) adds
the network's size, u32 width and u32 height, after the metadata length (which
may be 0 here): the encoder resampled the image to that size before the network,
and the decoder resamples the network's output back to the image's size
(``docs/format.md``: Lanczos, as Pillow does it). Padding and the LR size refer to
the network's size.

A header's version follows from its content: one with a ``fingerprint`` is
written as version 2, one without (as read from a version-1 file) as version 1,
one whose payload needs a newer reader (``payload_version``: an entropy
stream with a step block needs version 3) as that version, and a file with
metadata (``has_metadata``) as version 4, and a resampled one (``network_size``) as
version 5. Writing the oldest version that holds
the file keeps it readable by as many irncodec releases as possible: a file
without metadata is byte for byte what irncodec 0.3 wrote.

Reading never trusts the file: every problem (bad magic, newer version,
truncation, checksum mismatch, absurd sizes, trailing bytes) is a
``FormatError`` with a one-line message, and declared lengths are checked
against limits before anything is read, so a hostile header cannot make the
reader allocate gigabytes. The pixel limit is ``MAX_PIXELS_DEFAULT`` unless the
``max_pixels`` argument or the ``IRNCODEC_MAX_PIXELS`` environment variable
(read at call time) says otherwise. ``pack`` applies the same checks, so a file
that packs always unpacks (under the same limit).
"""

from __future__ import annotations

import io
import os
import re
import struct
import zlib
from dataclasses import dataclass, replace
from typing import BinaryIO, NamedTuple

from .errors import ConfigError, FormatError, PayloadChecksumError
from .lr_codecs import codec_ids

#: The newest version irncodec writes (only for files that need it: see Header.version);
#: every version in READ_VERSIONS is still read.
FORMAT_VERSION = 5
READ_VERSIONS = (1, 2, 3, 4, 5)
#: The versions that changed what a payload may hold (``Header.payload_version``).
PAYLOAD_VERSIONS = (1, 2, 3)
#: The first version with a metadata section (ICC profile, EXIF).
METADATA_VERSION = 4
#: The first version that records a network size other than the image's (``Header.network_size``).
RESAMPLE_VERSION = 5
MAGIC = b"\x89IRN"

SUPPORTED_SCALES = (2, 4)
#: Original image mode (restored on decode) <-> its id in the file.
MODE_IDS = {"L": 1, "RGB": 2, "LA": 3, "RGBA": 4}
MODES_WITH_ALPHA = ("LA", "RGBA")

FLAG_ALPHA = 0x01
#: Version 4: a metadata section follows the alpha plane (reserved, so 0, in versions 1 to 3).
FLAG_METADATA = 0x02
KNOWN_FLAGS = FLAG_ALPHA | FLAG_METADATA

MAX_MODEL_NAME = 64
MAX_DIMENSION = 65535
#: A resampled file's network size may have this many times the image pixel limit (scale
#: 1.1 with an x2 network gives (2 / 1.1)^2 = 3.3 times the pixels), and sides of up to
#: MAX_NETWORK_DIMENSION.
NETWORK_PIXELS_FACTOR = 4
MAX_NETWORK_DIMENSION = 2 * MAX_DIMENSION
#: Largest width*height a reader (and the encoder) accepts by default: Pillow's
#: decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``, about 89 megapixels,
#: e.g. 11585 x 7723), which inputs past it could not be read under anyway.
MAX_PIXELS_DEFAULT = 1024 * 1024 * 1024 // 4 // 3
#: Largest payload (and alpha plane) length a reader accepts, checked before reading.
MAX_PAYLOAD_BYTES = 2**30
#: Largest metadata section a reader accepts (checked before reading), and largest chunk in it.
MAX_METADATA_BYTES = 2**24
MAX_METADATA_CHUNK = 2**22
#: Metadata chunks in the order they must appear: tag in the file -> ``Metadata`` field.
METADATA_TAGS = {b"ICCP": "icc_profile", b"EXIF": "exif"}
#: What an EXIF chunk starts with: a TIFF header, little- or big-endian.
TIFF_HEADERS = (b"II*\x00", b"MM\x00*")
#: An ICC profile's header is 128 bytes, with the signature ``acsp`` at offset 36.
ICC_HEADER_SIZE = 128
MAX_PIXELS_ENV = "IRNCODEC_MAX_PIXELS"

_PREFIX = struct.Struct("<4sBBB")          # magic, version, flags, name length
_FIELDS = struct.Struct("<BIIBBBBBII")     # scale .. alpha length
_CRCS = struct.Struct("<II")               # header crc, payload crc
_META_LEN = struct.Struct("<I")            # metadata length (version 4)
_NET_SIZE = struct.Struct("<II")           # network width, height (version 5)
_CHUNK = struct.Struct("<4sI")             # metadata chunk: tag, length
#: Length of the weights fingerprint (version 2).
FINGERPRINT_SIZE = 8
#: Header size without the model name, by version: the header is this + n bytes.
HEADER_FIXED_SIZES = {1: _PREFIX.size + _FIELDS.size + _CRCS.size,                                    # 37
                      2: _PREFIX.size + _FIELDS.size + FINGERPRINT_SIZE + _CRCS.size,                 # 45
                      3: _PREFIX.size + _FIELDS.size + FINGERPRINT_SIZE + _CRCS.size,                 # 45
                      4: _PREFIX.size + _FIELDS.size + FINGERPRINT_SIZE + _META_LEN.size + _CRCS.size,  # 49
                      5: _PREFIX.size + _FIELDS.size + FINGERPRINT_SIZE + _META_LEN.size + _NET_SIZE.size
                      + _CRCS.size}                                                                   # 57
HEADER_FIXED_SIZE = HEADER_FIXED_SIZES[FORMAT_VERSION]

_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_NAME_RE_BYTES = re.compile(rb"[A-Za-z0-9._-]{1,64}")
_MODE_NAMES = {v: k for k, v in MODE_IDS.items()}
_READ_CHUNK = 1 << 24


def is_valid_model_name(name: str) -> bool:
    """Whether ``name`` can be stored as a model identifier in a header."""
    return isinstance(name, str) and _NAME_RE.fullmatch(name) is not None


@dataclass(frozen=True)
class Header:
    """What a decoder needs besides the payload: model, geometry, mode and LR codec."""

    model: str
    scale: int
    width: int
    height: int
    mode: str       # "L" | "RGB" | "LA" | "RGBA"
    pad_x: int
    pad_y: int
    codec: str      # a registered LR codec (irncodec.lr_codecs)
    quality: int
    #: Short hash of the weights that made the LR image (``zoo.fingerprint``);
    #: None only in version-1 files, which predate it.
    fingerprint: bytes | None = None
    #: The oldest format version whose readers decode the payload
    #: (``LRCodec.format_version``): 3 for an entropy stream with a step block.
    #: As read from a file: 3 for versions 3 and 4, whose payloads may have one.
    payload_version: int = 1
    #: Whether the file carries a metadata section (``IrnFile.metadata``): version 4.
    has_metadata: bool = False
    #: The size (width, height) the image was resampled to before the network, for a
    #: scale other than the network's (version 5); None: the image's own size.
    network_size: tuple[int, int] | None = None

    @property
    def version(self) -> int:
        """The format version this header is written in: 5 with a network size, 4 with
        metadata, else the payload's if newer, else 2 with a fingerprint, else 1."""
        return max(self.payload_version, 1 if self.fingerprint is None else 2,
                   METADATA_VERSION if self.has_metadata else 1,
                   RESAMPLE_VERSION if self.network_size is not None else 1)

    @property
    def network_width(self) -> int:
        """Width of the image the network saw: the image's, unless it was resampled."""
        return self.width if self.network_size is None else self.network_size[0]

    @property
    def network_height(self) -> int:
        """Height of the image the network saw: the image's, unless it was resampled."""
        return self.height if self.network_size is None else self.network_size[1]

    @property
    def lr_width(self) -> int:
        """Width of the stored LR image (the network's padded width divided by its scale)."""
        return (self.network_width + self.pad_x) // self.scale

    @property
    def lr_height(self) -> int:
        """Height of the stored LR image (the network's padded height divided by its scale)."""
        return (self.network_height + self.pad_y) // self.scale

    @property
    def effective_scale(self) -> float:
        """How much smaller the stored LR image is than the image, on average over both sides."""
        return (self.width / self.lr_width * self.height / self.lr_height) ** 0.5


@dataclass(frozen=True)
class Metadata:
    """What a file carries about its image besides the pixels (version 4): the ICC
    profile, stored as it was (pixels are not colour-converted), and the EXIF data as
    a TIFF structure (``II*\\0`` or ``MM\\0*`` first, no ``Exif\\0\\0`` prefix), whose
    Orientation is 1 when the encoder turned the pixels upright (images read from
    files: :func:`irncodec.imageio.load_image`). ``b""``: none."""

    icc_profile: bytes = b""
    exif: bytes = b""

    def __bool__(self) -> bool:
        return bool(self.icc_profile or self.exif)

    def describe(self) -> str:
        """One line for ``irncodec info``: ``ICC profile 3144 bytes, EXIF 1200 bytes`` or ``none``."""
        parts = [f"{label} {len(data)} bytes" for label, data in
                 (("ICC profile", self.icc_profile), ("EXIF", self.exif)) if data]
        return ", ".join(parts) or "none"


@dataclass(frozen=True)
class IrnFile:
    """A parsed ``.irn`` file: header, LR payload, the PNG-coded alpha plane (or b"")
    and metadata (version 4; ``header.has_metadata`` says whether there is any)."""

    header: Header
    payload: bytes
    alpha: bytes = b""
    metadata: Metadata = Metadata()

    @property
    def has_alpha(self) -> bool:
        return len(self.alpha) > 0

    @property
    def size(self) -> int:
        """Length in bytes of the serialized file, without serializing it."""
        return (HEADER_FIXED_SIZES[self.header.version] + len(self.header.model)
                + len(self.payload) + len(self.alpha) + _metadata_size(self.metadata))

    def with_metadata(self, metadata: Metadata) -> IrnFile:
        """This file with other metadata (``Metadata()``: none), the header's flag to match."""
        return replace(self, header=replace(self.header, has_metadata=bool(metadata)), metadata=metadata)

    def bits_per_pixel(self) -> float:
        """Whole-file size in bits per original pixel: the rate a benchmark reports."""
        return self.size * 8 / (self.header.width * self.header.height)


# --- limits -------------------------------------------------------------------------------

def max_pixels_limit(max_pixels: int | None = None) -> int:
    """The pixel limit in force: the argument, else ``$IRNCODEC_MAX_PIXELS``, else the default."""
    if max_pixels is not None:
        if not isinstance(max_pixels, int) or isinstance(max_pixels, bool) or max_pixels < 1:
            raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")
        return max_pixels
    env = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not env:
        return MAX_PIXELS_DEFAULT
    try:
        value = int(env)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{MAX_PIXELS_ENV} must be a positive integer, got '{env}'")
    return value


# --- validation shared by pack and unpack -------------------------------------------------

def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _header_problem(h: Header, alpha_len: int, max_pixels: int) -> str | None:
    """Why a header cannot be stored or accepted, or None if it is fine."""
    if not is_valid_model_name(h.model):
        return (f"invalid model name {h.model!r}: must be 1-{MAX_MODEL_NAME} characters "
                "of A-Z a-z 0-9 . _ -")
    for field in ("scale", "width", "height", "pad_x", "pad_y", "quality"):
        if not _is_int(getattr(h, field)):
            return f"header field {field} must be an integer, got {getattr(h, field)!r}"
    if h.scale not in SUPPORTED_SCALES:
        return f"unsupported scale {h.scale} (supported: {', '.join(map(str, SUPPORTED_SCALES))})"
    if h.width < 1 or h.height < 1:
        return f"invalid image size {h.width}x{h.height}: width and height must be at least 1"
    if h.width > MAX_DIMENSION or h.height > MAX_DIMENSION:
        return (f"declared image size {h.width}x{h.height} exceeds the maximum "
                f"dimension of {MAX_DIMENSION}")
    if h.width * h.height > max_pixels:
        return (f"declared image size {h.width}x{h.height} exceeds the limit of "
                f"{max_pixels} pixels (set {MAX_PIXELS_ENV} to raise it)")
    if not isinstance(h.mode, str) or h.mode not in MODE_IDS:
        return f"unknown image mode {h.mode!r} (known: {', '.join(MODE_IDS)})"
    if h.network_size is not None:
        problem = _network_size_problem(h, max_pixels)
        if problem:
            return problem
    for name, size, pad in (("x", h.network_width, h.pad_x), ("y", h.network_height, h.pad_y)):
        if not 0 <= pad < h.scale or (size + pad) % h.scale != 0:
            return (f"invalid padding pad_{name}={pad} for size {size} at scale {h.scale}: "
                    f"the padded size must be the next multiple of {h.scale}")
    if not isinstance(h.codec, str) or h.codec not in codec_ids():
        return f"unknown LR codec {h.codec!r} (known: {', '.join(codec_ids())})"
    if not 0 <= h.quality <= 100:
        return f"invalid quality {h.quality} (must be 0..100)"
    if alpha_len and h.mode not in MODES_WITH_ALPHA:
        return f"an alpha plane is stored but the image mode {h.mode} has no alpha"
    if h.fingerprint is not None and (not isinstance(h.fingerprint, bytes) or len(h.fingerprint) != FINGERPRINT_SIZE):
        return f"the weights fingerprint must be {FINGERPRINT_SIZE} bytes, got {h.fingerprint!r}"
    if not _is_int(h.payload_version) or h.payload_version not in PAYLOAD_VERSIONS:
        return f"payload version must be one of {', '.join(map(str, PAYLOAD_VERSIONS))}, got {h.payload_version!r}"
    if not isinstance(h.has_metadata, bool):
        return f"has_metadata must be True or False, got {h.has_metadata!r}"
    if h.version >= 2 and h.fingerprint is None:
        return f"a version-{h.version} file needs the weights fingerprint"
    return None


def _network_size_problem(h: Header, max_pixels: int) -> str | None:
    size = h.network_size
    if (not isinstance(size, tuple) or len(size) != 2 or not all(_is_int(v) for v in size)):
        return f"the network size must be a (width, height) pair of integers, got {size!r}"
    width, height = size
    if not (1 <= width <= MAX_NETWORK_DIMENSION and 1 <= height <= MAX_NETWORK_DIMENSION):
        return f"invalid network size {width}x{height}: each side must be 1..{MAX_NETWORK_DIMENSION}"
    if width * height > NETWORK_PIXELS_FACTOR * max_pixels:
        return (f"declared network size {width}x{height} exceeds the limit of {NETWORK_PIXELS_FACTOR * max_pixels} "
                f"pixels ({NETWORK_PIXELS_FACTOR} times the image limit; set {MAX_PIXELS_ENV} to raise it)")
    if size == (h.width, h.height):
        return "the network size equals the image's size (such a file records none)"
    return None


def _metadata_size(md: Metadata) -> int:
    """Length of the metadata section: 8 bytes of tag and length per chunk, plus its data."""
    return sum(_CHUNK.size + len(data) for data in (md.icc_profile, md.exif) if data)


def metadata_problem(md: Metadata) -> str | None:
    """Why metadata cannot be stored or accepted, or None if it is fine."""
    if not isinstance(md, Metadata):
        return f"metadata must be a Metadata, got {type(md).__name__}"
    for field, label in (("icc_profile", "ICC profile"), ("exif", "EXIF data")):
        data = getattr(md, field)
        if not isinstance(data, bytes):
            return f"the {label} must be bytes, got {type(data).__name__}"
        if len(data) > MAX_METADATA_CHUNK:
            return f"the {label} is {len(data)} bytes, over the limit of {MAX_METADATA_CHUNK} bytes"
    icc, exif = md.icc_profile, md.exif
    if icc and (len(icc) < ICC_HEADER_SIZE or icc[36:40] != b"acsp"):
        return "the ICC profile is not one (shorter than 128 bytes, or no 'acsp' signature at offset 36)"
    if exif and not exif.startswith(TIFF_HEADERS):
        return "the EXIF data does not start with a TIFF header (II*\\0 or MM\\0*)"
    return None


def _length_problem(what: str, length: int, minimum: int) -> str | None:
    if length < minimum:
        return f"empty {what}"
    if length > MAX_PAYLOAD_BYTES:
        return f"{what} length {length} exceeds the limit of {MAX_PAYLOAD_BYTES} bytes"
    return None


# --- writing ------------------------------------------------------------------------------

def pack_metadata(md: Metadata) -> bytes:
    """The metadata section of ``md`` (b"" for none): its chunks in the order of ``METADATA_TAGS``."""
    return b"".join(_CHUNK.pack(tag, len(data)) + data
                    for tag, field in METADATA_TAGS.items() if (data := getattr(md, field)))


def pack(f: IrnFile, max_pixels: int | None = None) -> bytes:
    """Serialize an ``IrnFile``; raises ValueError for values a reader would reject.

    The file's version is ``Header.version``: 5 when resampled, 4 with metadata, 3 when the payload
    needs it, 2 with a weights fingerprint, 1 without (a header read from a
    version-1 file). A file without metadata is written as before version 4 existed.
    """
    h = f.header
    if not isinstance(f.payload, (bytes, bytearray, memoryview)):
        raise ValueError(f"payload must be bytes, got {type(f.payload).__name__}")
    if not isinstance(f.alpha, (bytes, bytearray, memoryview)):
        raise ValueError(f"alpha must be bytes, got {type(f.alpha).__name__}")
    payload, alpha = bytes(f.payload), bytes(f.alpha)
    problem = (_header_problem(h, len(alpha), max_pixels_limit(max_pixels))
               or _length_problem("LR payload", len(payload), 1)
               or _length_problem("alpha plane", len(alpha), 0)
               or metadata_problem(f.metadata))
    if not problem and h.has_metadata != bool(f.metadata):
        problem = ("the header's has_metadata does not say whether the file has metadata "
                   "(IrnFile.with_metadata sets both)")
    if problem:
        raise ValueError(f"cannot pack .irn file: {problem}")
    meta = pack_metadata(f.metadata)

    name = h.model.encode("ascii")
    flags = (FLAG_ALPHA if alpha else 0) | (FLAG_METADATA if meta else 0)
    head = _PREFIX.pack(MAGIC, h.version, flags, len(name)) + name
    head += _FIELDS.pack(h.scale, h.width, h.height, MODE_IDS[h.mode], h.pad_x, h.pad_y,
                         codec_ids()[h.codec], h.quality, len(payload), len(alpha))
    head += h.fingerprint or b""
    if h.version >= METADATA_VERSION:
        head += _META_LEN.pack(len(meta))
    if h.version >= RESAMPLE_VERSION:
        head += _NET_SIZE.pack(*h.network_size)  # type: ignore[misc]
    crcs = _CRCS.pack(zlib.crc32(head), zlib.crc32(meta, zlib.crc32(alpha, zlib.crc32(payload))))
    return head + crcs + payload + alpha + meta


# --- reading ------------------------------------------------------------------------------

def read_upto(stream: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at end of file; allocates only what is really there."""
    parts = []
    while n > 0:
        chunk = stream.read(min(n, _READ_CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _count_rest(stream: BinaryIO) -> int:
    """Number of bytes left in the stream, read and discarded in chunks."""
    count = 0
    while chunk := stream.read(_READ_CHUNK):
        count += len(chunk)
    return count


class _Parsed(NamedTuple):
    """A validated header and the lengths and checksum that follow it in the file."""

    header: Header
    payload_len: int
    alpha_len: int
    meta_len: int
    payload_crc: int


def _parse_header(stream: BinaryIO, max_pixels: int) -> _Parsed:
    """Header, payload, alpha and metadata lengths, and payload CRC, all validated."""
    prefix = read_upto(stream, _PREFIX.size)
    if not prefix:
        raise FormatError("not an .irn file (empty)")
    if prefix[:len(MAGIC)] != MAGIC[:len(prefix)]:
        raise FormatError("not an .irn file (bad magic)")
    if len(prefix) < _PREFIX.size:
        raise FormatError(f"truncated .irn file: header needs at least {min(HEADER_FIXED_SIZES.values()) + 1} "
                          f"bytes, got {len(prefix)}")
    _, version, flags, name_len = _PREFIX.unpack(prefix)
    if version not in READ_VERSIONS:
        raise FormatError(f"unsupported .irn format version {version} "
                          f"(this irncodec reads versions {', '.join(map(str, READ_VERSIONS))})")
    if not 1 <= name_len <= MAX_MODEL_NAME:
        raise FormatError(f"invalid model name length {name_len} (must be 1..{MAX_MODEL_NAME})")

    header_size = HEADER_FIXED_SIZES[version] + name_len
    rest = read_upto(stream, header_size - _PREFIX.size)
    if len(rest) < header_size - _PREFIX.size:
        raise FormatError(f"truncated .irn file: header needs {header_size} bytes, "
                          f"got {_PREFIX.size + len(rest)}")
    fields_end = name_len + _FIELDS.size
    crcs_start = len(rest) - _CRCS.size
    head = prefix + rest[:crcs_start]
    fingerprint_end = fields_end + FINGERPRINT_SIZE if version >= 2 else fields_end
    fingerprint = rest[fields_end:fingerprint_end] if version >= 2 else None
    meta_len = _META_LEN.unpack_from(rest, fingerprint_end)[0] if version >= METADATA_VERSION else 0
    network_size = (tuple(_NET_SIZE.unpack_from(rest, fingerprint_end + _META_LEN.size))
                    if version >= RESAMPLE_VERSION else None)
    header_crc, payload_crc = _CRCS.unpack(rest[crcs_start:])
    if zlib.crc32(head) != header_crc:
        raise FormatError("header checksum mismatch: file is corrupt")

    known_flags = KNOWN_FLAGS if version >= METADATA_VERSION else FLAG_ALPHA
    if flags & ~known_flags:
        raise FormatError(f"reserved flag bits 0x{flags & ~known_flags:02x} are set "
                          "(file is corrupt or from a newer writer)")
    name = rest[:name_len]
    if not _NAME_RE_BYTES.fullmatch(name):
        raise FormatError(f"invalid model name {name!r}: must be ASCII A-Z a-z 0-9 . _ -")
    (scale, width, height, mode_id, pad_x, pad_y, codec_id, quality,
     payload_len, alpha_len) = _FIELDS.unpack(rest[name_len:fields_end])
    if mode_id not in _MODE_NAMES:
        raise FormatError(f"unknown image mode id {mode_id}")
    codec_names = {file_id: name for name, file_id in codec_ids().items()}
    if codec_id not in codec_names:
        raise FormatError(f"unknown LR codec id {codec_id}")
    if bool(flags & FLAG_ALPHA) != (alpha_len > 0):
        raise FormatError(f"alpha flag is {'set' if flags & FLAG_ALPHA else 'clear'} "
                          f"but the alpha length is {alpha_len}")
    if bool(flags & FLAG_METADATA) != (meta_len > 0):
        raise FormatError(f"metadata flag is {'set' if flags & FLAG_METADATA else 'clear'} "
                          f"but the metadata length is {meta_len}")
    if version == METADATA_VERSION and not meta_len:
        raise FormatError(f"a version-{version} file without metadata (files without it are version 2 or 3)")
    header = Header(model=name.decode("ascii"), scale=scale, width=width, height=height,
                    mode=_MODE_NAMES[mode_id], pad_x=pad_x, pad_y=pad_y,
                    codec=codec_names[codec_id], quality=quality, fingerprint=fingerprint,
                    payload_version=3 if version >= 3 else 1, has_metadata=meta_len > 0,
                    network_size=network_size)
    problem = (_header_problem(header, alpha_len, max_pixels)
               or _length_problem("LR payload", payload_len, 1)
               or _length_problem("alpha plane", alpha_len, 0))
    if not problem and meta_len > MAX_METADATA_BYTES:
        problem = f"metadata length {meta_len} exceeds the limit of {MAX_METADATA_BYTES} bytes"
    if problem:
        raise FormatError(problem)
    return _Parsed(header, payload_len, alpha_len, meta_len, payload_crc)


def _parse_metadata(data: bytes) -> Metadata:
    """The metadata section's chunks, or a FormatError saying what is wrong with them."""
    found: dict[str, bytes] = {}
    tags = list(METADATA_TAGS)
    next_tag, at = 0, 0
    while at < len(data):
        if len(data) - at < _CHUNK.size:
            raise FormatError(f"metadata section ends inside a chunk header ({len(data) - at} bytes left)")
        tag, length = _CHUNK.unpack_from(data, at)
        if tag not in METADATA_TAGS:
            raise FormatError(f"unknown metadata chunk {tag!r} (this irncodec knows "
                              f"{', '.join(t.decode() for t in tags)})")
        if tags.index(tag) < next_tag:
            raise FormatError(f"metadata chunk {tag.decode()} repeated or out of order "
                              f"(chunks are {', '.join(t.decode() for t in tags)}, each at most once, in that order)")
        if not 1 <= length <= MAX_METADATA_CHUNK:
            raise FormatError(f"metadata chunk {tag.decode()} has length {length} (must be 1..{MAX_METADATA_CHUNK})")
        if length > len(data) - at - _CHUNK.size:
            raise FormatError(f"metadata chunk {tag.decode()} of {length} bytes runs past the metadata section")
        found[METADATA_TAGS[tag]] = data[at + _CHUNK.size:at + _CHUNK.size + length]
        next_tag, at = tags.index(tag) + 1, at + _CHUNK.size + length
    metadata = Metadata(**found)
    problem = metadata_problem(metadata)
    if problem:
        raise FormatError(f"bad metadata: {problem}")
    return metadata


def _read_stream(stream: BinaryIO, max_pixels: int) -> IrnFile:
    header, payload_len, alpha_len, meta_len, payload_crc = _parse_header(stream, max_pixels)
    size = payload_len + alpha_len + meta_len
    body = read_upto(stream, size)
    if len(body) < size:
        what = "payload, alpha and metadata" if meta_len else "payload and alpha"
        raise FormatError(f"truncated .irn file: {what} need {size} bytes, got {len(body)}")
    trailing = _count_rest(stream)
    if trailing:
        raise FormatError(f"{trailing} unexpected trailing bytes after the end of the .irn file")
    if zlib.crc32(body) != payload_crc:
        raise PayloadChecksumError("payload checksum mismatch: file is corrupt")
    metadata = _parse_metadata(body[payload_len + alpha_len:]) if meta_len else Metadata()
    return IrnFile(header, body[:payload_len], body[payload_len:payload_len + alpha_len], metadata)


def _as_stream(data: bytes | bytearray | memoryview) -> BinaryIO:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    return io.BytesIO(data)


def unpack(data: bytes | bytearray | memoryview, max_pixels: int | None = None) -> IrnFile:
    """Parse and fully validate ``.irn`` bytes; any problem is a ``FormatError``."""
    return _read_stream(_as_stream(data), max_pixels_limit(max_pixels))


def split_payload(data: bytes) -> tuple[bytes, IrnFile]:
    """(the file without its payload: header, alpha plane, metadata; the parsed file) of valid ``.irn``
    bytes, for carrying the rest of a file inside a standard image file (:mod:`irncodec.viewable`)."""
    f = unpack(data)
    head = HEADER_FIXED_SIZES[f.header.version] + len(f.header.model)
    return data[:head] + data[head + len(f.payload):], f


def join_payload(rest: bytes, payload: bytes) -> bytes:
    """The ``.irn`` bytes ``split_payload`` split; FormatError if ``rest`` is no header (plus alpha
    and metadata)."""
    stream = _as_stream(rest)
    _parse_header(stream, max_pixels_limit())
    head = stream.tell()
    return rest[:head] + payload + rest[head:]


def _open_source(source: str | os.PathLike | BinaryIO, action) -> object:
    """Run ``action(stream)`` on a path (opened here) or an open binary file object."""
    if not isinstance(source, (str, os.PathLike)):
        try:
            return action(source)
        except OSError as exc:
            raise FormatError(f"cannot read .irn file: {exc.strerror or exc}") from exc
    try:
        with open(source, "rb") as stream:
            return action(stream)
    except OSError as exc:
        raise FormatError(f"cannot read {os.fspath(source)}: {exc.strerror or exc}") from exc


def read(source: str | os.PathLike | BinaryIO, max_pixels: int | None = None) -> IrnFile:
    """Read an ``.irn`` file from a path or binary file object, reading only declared bytes."""
    limit = max_pixels_limit(max_pixels)
    return _open_source(source, lambda stream: _read_stream(stream, limit))  # type: ignore[return-value]


def peek_header(source: bytes | bytearray | memoryview | str | os.PathLike | BinaryIO,
                max_pixels: int | None = None) -> Header:
    """Only the validated header (no payload read or checked): cheap for listing files."""
    limit = max_pixels_limit(max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _parse_header(_as_stream(source), limit).header
    return _open_source(source, lambda stream: _parse_header(stream, limit).header)  # type: ignore[return-value]
