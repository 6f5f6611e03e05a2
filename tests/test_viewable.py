"""Standard JPEG, WebP and PNG files that carry an .irn file: viewers show the LR image,
irncodec restores the full size from the same bytes."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from click.testing import CliRunner
from PIL import Image

import irncodec
from irncodec import container, viewable
from irncodec.cli import main
from irncodec.errors import CodecError, FormatError
from irncodec.lr_codecs import pillow

from .conftest import photo_like


def rgba(width: int, height: int) -> Image.Image:
    img = photo_like(width, height).convert("RGBA")
    img.putalpha(Image.linear_gradient("L").resize((width, height)))
    return img


@pytest.fixture(scope="module")
def files(tiny_weights):
    out = {}
    for codec in ("jpeg", "webp", "png"):
        for mode in ("RGB", "RGBA"):
            img = photo_like(50, 34) if mode == "RGB" else rgba(50, 34)
            out[codec, mode] = irncodec.encode(img, codec=codec, model=tiny_weights[2])
    return out


@pytest.mark.parametrize("codec,fmt", [("jpeg", "JPEG"), ("webp", "WEBP"), ("png", "PNG")])
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_viewers_see_the_lr_image_and_irncodec_the_whole_file(files, codec, fmt, mode, tiny_weights):
    irn = files[codec, mode]
    wrapped = viewable.wrap(irn)
    with Image.open(io.BytesIO(wrapped)) as shown:  # what a viewer does
        assert shown.format == fmt and shown.size == (25, 17)
        shown.load()
        lr = irncodec.decode_lr(irn)
        assert shown.convert("RGB").tobytes() == lr.tobytes()
    assert viewable.unwrap(wrapped) == irn  # byte for byte
    assert len(wrapped) <= len(irn) * 1.01 + 300
    assert irncodec.decode(wrapped, model=tiny_weights[2]).tobytes() == \
        irncodec.decode(irn, model=tiny_weights[2]).tobytes()


def test_the_layouts_are_the_documented_ones(files):
    """docs/format.md: JPEG APP9 segments after SOI and APP0; WebP VP8X first and an IRNC chunk
    last; PNG an irNC chunk before IEND. Each holds the .irn file without its payload."""
    irn = files["jpeg", "RGB"]
    f = container.unpack(irn)
    rest = irn[:len(irn) - len(f.payload)]
    jpeg = viewable.wrap(irn)
    app0_end = 4 + int.from_bytes(f.payload[4:6], "big")
    assert jpeg[:app0_end] == f.payload[:app0_end] and jpeg[app0_end:app0_end + 2] == b"\xff\xe9"
    length = int.from_bytes(jpeg[app0_end + 2:app0_end + 4], "big")
    assert jpeg[app0_end + 4:app0_end + 2 + length] == b"irncodec\0" + struct.pack(">HH", 0, 1) + rest
    assert jpeg[app0_end + 2 + length:] == f.payload[app0_end:]

    irn = files["webp", "RGB"]
    f = container.unpack(irn)
    webp = viewable.wrap(irn)
    assert webp[12:16] == b"VP8X" and webp[20:24] == bytes(4)
    assert (int.from_bytes(webp[24:27], "little") + 1, int.from_bytes(webp[27:30], "little") + 1) == (25, 17)
    assert webp[30:30 + len(f.payload) - 12] == f.payload[12:]
    tail = webp[30 + len(f.payload) - 12:]
    assert tail[:4] == b"IRNC" and tail[8:8 + int.from_bytes(tail[4:8], "little")] == irn[:len(irn) - len(f.payload)]
    assert int.from_bytes(webp[4:8], "little") + 8 == len(webp)

    irn = files["png", "RGB"]
    f = container.unpack(irn)
    png = viewable.wrap(irn)
    rest = irn[:len(irn) - len(f.payload)]
    assert png == f.payload[:-12] + struct.pack(">I", len(rest)) + b"irNC" + rest \
        + struct.pack(">I", __import__("zlib").crc32(b"irNC" + rest)) + pillow.PNG_END


def test_large_irncodec_data_spans_several_jpeg_segments(files, monkeypatch):
    monkeypatch.setattr(pillow, "_JPEG_PIECE", 20)
    irn = files["jpeg", "RGBA"]
    wrapped = viewable.wrap(irn)
    assert wrapped.count(b"irncodec\0") > 5
    assert viewable.unwrap(wrapped) == irn
    Image.open(io.BytesIO(wrapped)).load()
    first = wrapped.index(b"\xff\xe9", 4)
    second = wrapped.index(b"\xff\xe9", first + 2)
    with pytest.raises(FormatError, match="incomplete"):  # a segment lost
        viewable.unwrap(wrapped[:first] + wrapped[second:])


@pytest.mark.parametrize("codec", ["jpeg", "webp", "png"])
def test_stripped_or_edited_files_are_one_clear_error(files, codec):
    wrapped = viewable.wrap(files[codec, "RGB"])
    with Image.open(io.BytesIO(wrapped)) as shown:
        resaved = io.BytesIO()
        shown.save(resaved, format=shown.format)  # Pillow drops unknown metadata
    with pytest.raises(FormatError, match="carries no irncodec data"):
        irncodec.decode(resaved.getvalue())
    # the image changed but the segment kept: the payload CRC says so
    payload = container.unpack(files[codec, "RGB"]).payload
    pixels = len(payload) // 2
    edited = wrapped.replace(payload[pixels:pixels + 8], bytes(8), 1)
    with pytest.raises(FormatError, match="changed after irncodec wrote it"):
        irncodec.decode(edited)


def test_other_bytes_and_codecs_without_a_format():
    with pytest.raises(FormatError, match=r"not an \.irn file"):
        viewable.unwrap(b"GIF89a....")
    entropy_like = container.IrnFile(container.Header(
        model="m", scale=2, width=4, height=4, mode="RGB", pad_x=0, pad_y=0, codec="entropy", quality=2,
        fingerprint=bytes(8)), b"\x01\x02")
    with pytest.raises(CodecError, match="cannot be written as a standard image file"):
        viewable.wrap(container.pack(entropy_like))


def test_cli_writes_reads_and_extracts_viewable_files(tmp_path, tiny_weights):
    runner = CliRunner()
    png = tmp_path / "in.png"
    photo_like(50, 34).save(png)
    jpg, irn = tmp_path / "out.jpg", tmp_path / "out.irn"
    for out, args in ((jpg, []), (irn, [])):
        result = runner.invoke(main, ["encode", str(png), str(out), "-m", tiny_weights[2], "-q", "60", *args])
        assert result.exit_code == 0, result.output
    assert Image.open(jpg).format == "JPEG" and viewable.unwrap(jpg.read_bytes()) == irn.read_bytes()
    info = runner.invoke(main, ["info", str(jpg)])
    assert info.exit_code == 0 and "jpeg q60" in info.output
    for source in (jpg, irn):
        result = runner.invoke(main, ["decode", str(source), str(tmp_path / f"{source.suffix[1:]}.png"),
                                      "-m", tiny_weights[2]])
        assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "jpg.png").tobytes() == Image.open(tmp_path / "irn.png").tobytes()
    thumb = tmp_path / "thumb.jpg"
    result = runner.invoke(main, ["decode", str(irn), str(thumb), "--lr-only"])
    assert result.exit_code == 0 and thumb.read_bytes() == container.read(irn).payload  # stored bytes as they are
    result = runner.invoke(main, ["encode", str(png), str(tmp_path / "x.jpg"), "-c", "webp"])
    assert result.exit_code == 1 and "use -c jpeg" in result.output
    result = runner.invoke(main, ["decode", str(irn), str(tmp_path / "x.jpg")])  # lossy: only at a quality asked
    assert result.exit_code == 1 and "JPEG is a lossy format" in result.output and "--output-quality" in result.output
    assert not (tmp_path / "x.jpg").exists()


def test_target_size_holds_for_a_viewable_file(tmp_path):
    png, jpg = tmp_path / "in.png", tmp_path / "out.jpg"
    photo_like(96, 64, seed=3).save(png)
    result = CliRunner().invoke(main, ["encode", str(png), str(jpg), "-t", "1.0"])
    assert result.exit_code == 0, result.output
    assert jpg.stat().st_size * 8 / (96 * 64) <= 1.0 and Image.open(jpg).format == "JPEG"


@pytest.mark.parametrize("kind", ["irn", "jpg"])
def test_a_pipe_is_read_once_front_to_back(files, kind):
    """decode /dev/stdin: the first bytes, read to tell an .irn file from a JPEG, are not lost."""
    irn = files["jpeg", "RGB"]
    data = irn if kind == "irn" else viewable.wrap(irn)

    class Pipe(io.RawIOBase):  # no seek, reads in small pieces
        def __init__(self) -> None:
            self.left = data

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            size = len(self.left) if size < 0 else min(size, 7)
            out, self.left = self.left[:size], self.left[size:]
            return out

    assert container.pack(viewable.read(Pipe())) == irn


# --- embed/extract on hand-built streams, checked against the format specs ---------------

JpegCodec, PngCodec, WebpCodec = pillow.JpegCodec, pillow.PngCodec, pillow.WebpCodec


def pillow_file(fmt: str, **options) -> bytes:
    """A small image file as Pillow writes it: an LR payload that irncodec did not make."""
    out = io.BytesIO()
    photo_like(7, 5).save(out, format=fmt, **options)
    return out.getvalue()


def app9(index: int, count: int, piece: bytes, tag: bytes = b"irncodec\0") -> bytes:
    """An irncodec APP9 segment as docs/format.md lays it out (lengths count themselves, T.81 B.1.1.4)."""
    length = struct.pack(">H", 2 + len(tag) + 4 + len(piece))
    return b"\xff\xe9" + length + tag + struct.pack(">HH", index, count) + piece


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """A PNG chunk: big-endian length, type, data, CRC-32 of type and data (PNG spec 5.3)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def riff_chunk(kind: bytes, data: bytes) -> bytes:
    """A RIFF chunk: fourcc, little-endian size, data, a pad byte to an even length."""
    return kind + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2)


def riff(*chunks: bytes) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_files_of_other_tools_carry_nothing_and_keep_every_byte():
    """A plain JPEG, PNG or WebP file: its own bytes back, and no carried bytes."""
    for codec, fmt in ((JpegCodec, "JPEG"), (PngCodec, "PNG"), (WebpCodec, "WEBP")):
        data = pillow_file(fmt)
        assert codec.extract(data) == (data, None)


def test_embed_refuses_payloads_of_another_kind():
    """Each format embeds only into a whole stream of its own, saying so."""
    png, jpeg, webp = pillow_file("PNG"), pillow_file("JPEG"), pillow_file("WEBP")
    for bad in (png[:-1], png[len(pillow.PNG_SIGNATURE):], jpeg):
        with pytest.raises(CodecError, match=r"^the LR payload is not a complete PNG stream$"):
            PngCodec.embed(bad, b"carried")
    with pytest.raises(CodecError, match=r"^the LR payload is not a JPEG stream$"):
        JpegCodec.embed(png, b"carried")
    for bad in (jpeg, riff(), WebpCodec.embed(webp, b"carried")):  # not WebP; no image chunk; extended already
        with pytest.raises(CodecError, match=r"^the LR payload is not a simple-format WebP stream$"):
            WebpCodec.embed(bad, b"carried")
    damaged = riff(riff_chunk(b"VP8 ", bytes(10)))  # the right chunk, but not a VP8 frame
    with pytest.raises(CodecError, match=r"^the LR payload is not a valid WebP stream"):
        WebpCodec.embed(damaged, b"carried")


def test_png_chunks_are_read_up_to_the_last_byte():
    """A whole irNC chunk ending the data is read, empty or not; a length above PNG's 2**31 - 1
    runs past the end, and the bytes after its header are kept as they are, not searched."""
    head = pillow.PNG_SIGNATURE + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    assert PngCodec.extract(head + png_chunk(b"irNC", b"")) == (head, b"")
    assert PngCodec.extract(head + png_chunk(b"irNC", b"xyz")) == (head, b"xyz")
    huge = head + struct.pack(">I", 0xFFFFFFFF) + b"abCD" + bytes(3) + png_chunk(b"irNC", b"")
    assert PngCodec.extract(huge) == (huge, None)


def test_jpeg_segments_go_after_soi_or_after_a_jfif_app0_of_any_length():
    """Without APP0 the segments follow SOI; after an APP0 of 316 bytes (a JFIF thumbnail) they follow
    it whole. Either way viewers decode the same image and extract gives the payload back."""
    jpeg = pillow_file("JPEG")
    app0_end = 4 + int.from_bytes(jpeg[4:6], "big")
    thumbnail = b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x0a\x0a" + bytes(300)
    for app0 in (b"", b"\xff\xe0" + struct.pack(">H", 2 + len(thumbnail)) + thumbnail):
        payload = jpeg[:2] + app0 + jpeg[app0_end:]
        wrapped = JpegCodec.embed(payload, b"carried")
        at = 2 + len(app0)
        assert wrapped == payload[:at] + app9(0, 1, b"carried") + payload[at:]
        with Image.open(io.BytesIO(wrapped)) as shown, Image.open(io.BytesIO(jpeg)) as plain:
            assert shown.tobytes() == plain.tobytes()
        assert JpegCodec.extract(wrapped) == (payload, b"carried")


def test_jpeg_empty_carried_bytes_are_one_segment():
    """Nothing to carry is still one segment (index 0 of 1, no data), read back as empty."""
    jpeg = pillow_file("JPEG")
    at = 4 + int.from_bytes(jpeg[4:6], "big")
    wrapped = JpegCodec.embed(jpeg, b"")
    assert wrapped == jpeg[:at] + app9(0, 1, b"") + jpeg[at:]
    assert JpegCodec.extract(wrapped) == (jpeg, b"")


def test_jpeg_segments_of_other_applications_are_kept():
    """Another application's APP9, and one that starts with the tag but is too short to hold an
    index and count, are part of the image: kept in place, never read as irncodec data."""
    jpeg = pillow_file("JPEG")
    at = 4 + int.from_bytes(jpeg[4:6], "big")
    other = b"another application's data"
    payload = (jpeg[:at] + b"\xff\xe9" + struct.pack(">H", 2 + len(other)) + other
               + b"\xff\xe9\x00\x0cirncodec\0\x00" + jpeg[at:])
    assert JpegCodec.extract(payload) == (payload, None)
    assert JpegCodec.extract(JpegCodec.embed(payload, b"carried")) == (payload, b"carried")


@pytest.mark.parametrize("marker", [0xDA, 0xD9, 0xFF, 0x01, 0xD0, 0xD7])
def test_jpeg_segments_are_read_only_up_to_the_scan(marker):
    """Segments with a length follow SOI until the scan (T.81 B.2.1): SOS, EOI, a fill byte or a
    standalone marker (TEM, RSTn) ends them, and an APP9 segment after it is not read."""
    after = b"\x00\x08\x01\x01\x00\x00\x3f\x00" if marker == 0xDA else b"\x00\x02"
    data = b"\xff\xd8" + bytes([0xFF, marker]) + after + app9(0, 1, b"carried") + b"\xff\xd9"
    assert JpegCodec.extract(data) == (data, None)


def test_jpeg_segments_after_reserved_markers_and_at_the_very_end_are_read():
    """Reserved markers FF02..FFBF carry a length (T.81 B.1.1.4), so the search goes on past one;
    a stream that ends right after its segments is no error."""
    reserved = b"\xff\x02\x00\x04ab"
    assert JpegCodec.extract(b"\xff\xd8" + reserved + app9(0, 1, b"carried")) == (b"\xff\xd8" + reserved, b"carried")
    for cut in (b"\xff\xd8", b"\xff\xd8\xff\xfe\x00\x02"):
        assert JpegCodec.extract(cut) == (cut, None)
    with pytest.raises(FormatError, match="this JPEG file carries no irncodec data"):
        viewable.unwrap(b"\xff\xd8")


def test_jpeg_count_is_a_u16(monkeypatch):
    """65535 segments, the most a u16 count gives, are written and read back (index 65534 last);
    one more is refused."""
    monkeypatch.setattr(pillow, "_JPEG_PIECE", 1)
    jpeg = pillow_file("JPEG")
    at = 4 + int.from_bytes(jpeg[4:6], "big")
    carried = bytes(range(256)) * 256
    wrapped = JpegCodec.embed(jpeg, carried[:-1])
    assert wrapped[at:at + 18] == app9(0, 65535, carried[:1])  # 18 bytes: marker, length 16
    assert wrapped[at + 18 * 65534:at + 18 * 65535] == app9(65534, 65535, carried[65534:65535])
    assert wrapped[at + 18 * 65535:] == jpeg[at:]
    assert JpegCodec.extract(wrapped) == (jpeg, carried[:-1])
    with pytest.raises(CodecError, match=r"^too much irncodec data for JPEG segments$"):
        JpegCodec.embed(jpeg, carried)


def test_jpeg_missing_segment_message():
    """Segment 1 of 2 without segment 0: the error says what is wrong."""
    data = b"\xff\xd8" + app9(1, 2, b"second half") + b"\xff\xd9"
    message = r"^the irncodec data in this JPEG is incomplete \(segments missing or repeated\)$"
    with pytest.raises(FormatError, match=message):
        JpegCodec.extract(data)


def test_webp_layout_for_a_lossless_payload_and_odd_carried_bytes():
    """A VP8L payload is embedded too: VP8X (flags 0, canvas 7x5 as width-1, height-1 in 24 bits),
    the image chunk, an IRNC chunk padded to even length; RIFF's size counts all after it."""
    payload = pillow_file("WEBP", lossless=True)
    assert payload[12:16] == b"VP8L"
    wrapped = WebpCodec.embed(payload, b"abc")
    vp8x = riff_chunk(b"VP8X", bytes(4) + (6).to_bytes(3, "little") + (4).to_bytes(3, "little"))
    assert wrapped == riff(vp8x, payload[12:], b"IRNC\x03\x00\x00\x00abc\x00")
    with Image.open(io.BytesIO(wrapped)) as shown:
        assert shown.convert("RGB").tobytes() == photo_like(7, 5).tobytes()
    assert WebpCodec.extract(wrapped) == (payload, b"abc")


def test_webp_chunks_are_read_up_to_the_last_byte():
    """An empty IRNC chunk ending the file is read; a RIFF of no chunks is a WebP file carrying
    nothing; other chunks stay, in order, and a RIFF file of another form (WAVE) is not WebP."""
    assert WebpCodec.extract(riff(riff_chunk(b"IRNC", b"abc"))) == (riff(), b"abc")
    payload = pillow_file("WEBP")
    image = payload[12:]
    vp8x = riff_chunk(b"VP8X", bytes(4) + (6).to_bytes(3, "little") + (4).to_bytes(3, "little"))
    assert WebpCodec.extract(riff(vp8x, image, b"IRNC\0\0\0\0")) == (payload, b"")
    assert WebpCodec.extract(riff()) == (riff(), None)
    exif = riff_chunk(b"EXIF", b"Exif\0\0MM")
    assert WebpCodec.extract(riff(vp8x, image, exif, riff_chunk(b"IRNC", b"abc"))) == (riff(image, exif), b"abc")
    wave = b"RIFF" + struct.pack("<I", 12) + b"WAVE" + riff_chunk(b"data", b"abcd")
    assert WebpCodec.extract(wave) is None
    with pytest.raises(FormatError, match=r"not an \.irn file"):
        viewable.unwrap(wave)
