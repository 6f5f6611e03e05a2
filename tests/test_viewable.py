"""Standard JPEG, WebP and PNG files that carry an .irn file: viewers show the LR image,
irncodec restores the full size from the same bytes."""

from __future__ import annotations

import io
import struct

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
