"""An ``.irn`` file as a standard JPEG, WebP or PNG file that any viewer opens.

The LR payload of the JPEG, WebP and PNG paths already is such a file. Written
this way, it also carries the rest of the ``.irn`` file (header and alpha
plane, CRCs included) in a metadata segment viewers skip, placed by the LR
codec that owns the format (``LRCodec.embed``/``extract``; the byte layouts
are in docs/format.md). Viewers show the LR image; irncodec takes the segment
out again and gets back the ``.irn`` file byte for byte, so decoding gives the
same image. A tool that strips metadata leaves a valid image without the
segment, and one that re-encodes the image leaves a segment whose payload CRC
no longer matches: both are one clear FormatError.
"""

from __future__ import annotations

import os
from typing import BinaryIO, cast

from . import container
from .container import IrnFile
from .errors import FormatError, PayloadChecksumError
from .lr_codecs import available_codecs, codec_class

#: Most bytes ``wrap`` adds to an .irn file without an alpha plane (JPEG: 17 per
#: segment; WebP: 26 or 27; PNG: 12) plus room for an alpha plane's extra segments.
MAX_OVERHEAD = 64
#: Largest file read whole to look for irncodec data: the largest payload plus alpha.
MAX_FILE_BYTES = 2 * container.MAX_PAYLOAD_BYTES + 4096


def codec_for_suffix(suffix: str) -> str | None:
    """The LR codec whose payloads are files with this extension (``.jpg`` -> jpeg), if any."""
    suffix = suffix.lower()
    return next((name for name in available_codecs() if suffix in codec_class(name).suffixes), None)


def wrap(irn: bytes) -> bytes:
    """The ``.irn`` file as a standard image file of its LR codec's format (CodecError if it has none)."""
    rest, f = container.split_payload(irn)
    return codec_class(f.header.codec).embed(f.payload, rest)


def unwrap(data: bytes | bytearray | memoryview) -> bytes:
    """The ``.irn`` bytes in ``data``: an ``.irn`` file as it is, or the one a JPEG, WebP or PNG carries."""
    data = bytes(data)
    if data[:len(container.MAGIC)] == container.MAGIC[:len(data)]:
        return data
    for name in available_codecs():
        found = codec_class(name).extract(data)
        if found is None:
            continue
        payload, rest = found
        what = f"this {name.upper()} file"
        if rest is None:
            raise FormatError(f"{what} carries no irncodec data: it was written by another tool, or a tool "
                              "removed its metadata, and only its small image can be shown")
        try:
            irn = container.join_payload(rest, payload)
            header = container.unpack(irn).header
        except PayloadChecksumError:
            raise FormatError(f"the image in {what} changed after irncodec wrote it (edited or re-saved "
                              "by another tool): it no longer matches its irncodec data") from None
        except FormatError as err:
            raise FormatError(f"the irncodec data in {what} is damaged: {err}") from None
        if header.codec != name:
            raise FormatError(f"the irncodec data in {what} describes a {header.codec} payload")
        return irn
    carriers = ", ".join(name.upper() for name in available_codecs() if codec_class(name).suffixes)
    raise FormatError(f"not an .irn file (bad magic), nor a file of the LR formats that can carry one ({carriers})")


def read(source: str | os.PathLike | BinaryIO) -> IrnFile:
    """An ``.irn`` file, or a standard image file carrying one, from a path or binary file.

    The source is read once, front to back, so pipes (``/dev/stdin``) work too.
    """
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as stream:
                return _read_stream(stream)
        except OSError as exc:
            raise FormatError(f"cannot read {os.fspath(source)}: {exc.strerror or exc}") from exc
    try:
        return _read_stream(source)
    except OSError as exc:
        raise FormatError(f"cannot read .irn file: {exc.strerror or exc}") from exc


def _read_stream(stream: BinaryIO) -> IrnFile:
    start = container.read_upto(stream, len(container.MAGIC))
    if start == container.MAGIC or not start:  # an .irn file: read only what its header declares
        return container.read(cast(BinaryIO, _Prefixed(start, stream)))
    return container.unpack(unwrap(start + _read_bounded(stream)))


class _Prefixed:
    """A binary stream whose first bytes were already read: they come first again."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self.prefix, self.stream = prefix, stream

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            head, self.prefix = self.prefix, b""
            return head + self.stream.read()
        head, self.prefix = self.prefix[:size], self.prefix[size:]
        return head + (self.stream.read(size - len(head)) if size > len(head) else b"")


def _read_bounded(stream: BinaryIO) -> bytes:
    data = container.read_upto(stream, MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise FormatError(f"file is larger than {MAX_FILE_BYTES} bytes: not an irncodec file")
    return data
