"""Image loading, mode normalisation, alpha planes, tensors and padding."""

from __future__ import annotations

import errno
import io
import os
import re
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from irncodec import imageio
from irncodec.errors import CodecError, FormatError, ImageError
from irncodec.imageio import decode_alpha, encode_alpha, load_image, merge_alpha, split_alpha
from irncodec.tensors import crop, image_to_tensor, pad_to_multiple, tensor_to_image

SIZE = (17, 13)


def random_rgb(size=SIZE, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def gradient_alpha(size=SIZE) -> Image.Image:
    return Image.linear_gradient("L").resize(size)


def pixels(img: Image.Image) -> list[int]:
    return np.asarray(img).ravel().tolist()


def png_bytes(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


# --- load_image ------------------------------------------------------------------

def test_load_path_and_stream(tmp_path):
    img = random_rgb()
    path = tmp_path / "a.png"
    img.save(path)
    for source in (path, str(path), io.BytesIO(path.read_bytes())):
        loaded = load_image(source)
        assert loaded.mode == "RGB" and loaded.tobytes() == img.tobytes()


def test_load_applies_exif_orientation(tmp_path):
    img = random_rgb()
    exif = img.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif)
    loaded = load_image(path)
    assert loaded.size == (SIZE[1], SIZE[0])
    assert loaded.getexif().get(0x0112) is None


@pytest.mark.parametrize("kind, message", [
    ("missing", "no such file"),
    ("directory", "is a directory"),
    ("empty", "empty file"),
    ("text", "cannot identify image file"),
    ("truncated", "cannot read image"),
])
def test_load_errors(tmp_path, kind, message):
    path = tmp_path / f"{kind}.png"
    data = png_bytes(random_rgb())
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("hello, not an image\n")
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=message):
        load_image(path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_load_permission_denied(tmp_path):
    path = tmp_path / "secret.png"
    random_rgb().save(path)
    path.chmod(0)
    with pytest.raises(ImageError, match="permission denied"):
        load_image(path)


@pytest.mark.parametrize("limit", [150, 100])  # Pillow warns over 1x the limit, raises over 2x
def test_load_decompression_bomb(tmp_path, monkeypatch, limit):
    path = tmp_path / "big.png"
    random_rgb().save(path)  # 221 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(ImageError, match="image too large"):
        load_image(path)


# --- split_alpha / merge_alpha -------------------------------------------------------

def make_image(mode: str) -> Image.Image:
    rgb = random_rgb()
    if mode in ("RGBA", "RGBa", "LA", "La", "PA"):
        base = rgb.convert("RGBA" if mode.startswith("RGB") else mode[0] + "A")
        base.putalpha(gradient_alpha())
        return base.convert(mode) if base.mode != mode else base
    return rgb.convert(mode)


@pytest.mark.parametrize("mode, restore", [
    ("1", "L"), ("L", "L"), ("LA", "LA"), ("La", "LA"), ("P", "RGB"), ("PA", "RGBA"),
    ("RGB", "RGB"), ("RGBA", "RGBA"), ("RGBa", "RGBA"), ("RGBX", "RGB"),
    ("CMYK", "RGB"), ("YCbCr", "RGB"), ("I;16", "L"), ("I", "L"),
])
def test_split_and_merge_restore_mode(mode, restore):
    img = make_image(mode)
    assert img.mode == mode
    rgb, alpha, got = split_alpha(img)
    assert got == restore
    assert rgb.mode == "RGB" and rgb.size == img.size
    assert (alpha is not None) == (restore in ("LA", "RGBA"))
    if alpha is not None:
        assert alpha.mode == "L" and alpha.size == img.size
    out = merge_alpha(rgb, alpha, got)
    assert out.mode == restore and out.size == img.size


def test_grey_replicated_and_restored_exactly():
    grey = random_rgb().convert("L")
    rgb, _, mode = split_alpha(grey)
    r, g, b = rgb.split()
    assert r.tobytes() == g.tobytes() == b.tobytes() == grey.tobytes()
    assert merge_alpha(rgb, None, mode).tobytes() == grey.tobytes()


def test_rgba_alpha_kept_exactly():
    img = make_image("RGBA")
    rgb, alpha, mode = split_alpha(img)
    assert alpha.tobytes() == img.getchannel("A").tobytes()
    assert merge_alpha(rgb, alpha, mode).tobytes() == img.tobytes()


def test_palette_with_transparency_goes_through_rgba():
    img = Image.new("P", (4, 3), 0)
    img.putpalette([255, 0, 0, 0, 0, 255])
    img.putpixel((1, 1), 1)
    img.info["transparency"] = 1
    rgb, alpha, mode = split_alpha(img)
    assert mode == "RGBA"
    assert alpha.getpixel((1, 1)) == 0 and alpha.getpixel((0, 0)) == 255
    assert rgb.getpixel((0, 0)) == (255, 0, 0)


def test_16bit_grey_scaled_to_8bit():
    values = np.array([[0, 128, 129, 257, 32768, 65535]], dtype=np.uint16)
    img = Image.fromarray(values)
    assert img.mode == "I;16"
    rgb, _, mode = split_alpha(img)
    assert mode == "L"
    assert pixels(rgb.getchannel("G")) == [0, 0, 1, 1, 128, 255]


def test_32bit_grey_clipped_then_scaled():
    img = Image.fromarray(np.array([[-70000, -5, 65535, 100000]], dtype=np.int32), "I")
    rgb, _, _ = split_alpha(img)
    assert pixels(rgb.getchannel("R")) == [0, 0, 255, 255]


def test_cmyk_converted():
    img = Image.new("CMYK", (3, 2), (0, 255, 255, 0))  # pure red
    rgb, alpha, mode = split_alpha(img)
    assert (mode, alpha, rgb.getpixel((0, 0))) == ("RGB", None, (255, 0, 0))


@pytest.mark.parametrize("mode", ["F", "HSV", "LAB"])
def test_unsupported_mode(mode):
    with pytest.raises(ImageError) as info:
        split_alpha(Image.new(mode, (3, 2)))
    assert str(info.value) == (f"unsupported image mode '{mode}': supported modes are 1, L, LA, La, P, PA, RGB, "
                               "RGBA, RGBa, RGBX, CMYK, YCbCr, I;16, I;16B, I;16L, I;16N, I")


def test_empty_image_rejected():
    with pytest.raises(ImageError, match="empty"):
        split_alpha(Image.new("RGB", (0, 5)))


@pytest.mark.parametrize("alpha, mode", [(None, "RGBA"), (gradient_alpha(), "RGB"), (None, "XYZ")])
def test_merge_alpha_inconsistent(alpha, mode):
    with pytest.raises(FormatError):
        merge_alpha(random_rgb(), alpha, mode)


# --- alpha planes ----------------------------------------------------------------------

def test_alpha_png_round_trip_exact():
    alpha = random_rgb().getchannel("R")
    data = encode_alpha(alpha)
    assert data == encode_alpha(alpha)
    out = decode_alpha(data, SIZE)
    assert out.mode == "L" and out.tobytes() == alpha.tobytes()


#: The IEND chunk that ends every PNG (PNG spec, 11.2.5): empty, so its CRC is that of b"IEND".
IEND = b"\0\0\0\0IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


def _corrupt_idat(data: bytes) -> bytes:
    """The PNG with a byte of its compressed pixel data flipped (its framing still intact)."""
    at = data.index(b"IDAT") + 10
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


def _bmp_bytes(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="BMP")
    return out.getvalue()


@pytest.mark.parametrize("make_data, size, message", [
    (lambda a: encode_alpha(a), (SIZE[0] + 1, SIZE[1]), r"^alpha plane is a 17x13 'L' PNG, expected 18x13 'L'$"),
    (lambda a: png_bytes(a.convert("RGB")), SIZE, r"^alpha plane is a 17x13 'RGB' PNG, expected 17x13 'L'$"),
    (lambda a: encode_alpha(a)[:-20], SIZE, r"^alpha plane is not a complete PNG \(truncated, or followed by extra"),
    (lambda a: encode_alpha(a) + b"\0", SIZE, r"^alpha plane is not a complete PNG \(truncated, or followed by extra"),
    (lambda a: _corrupt_idat(encode_alpha(a)), SIZE, r"^alpha plane is not a valid PNG: \w"),
    (lambda a: b"not a png at all", SIZE, r"^alpha plane is not a PNG$"),
    (lambda a: b"", SIZE, r"^alpha plane is not a PNG$"),
    (lambda a: _bmp_bytes(a) + IEND, SIZE, r"^alpha plane is not a PNG$"),  # another format, even if it ends like one
])
def test_decode_alpha_rejects(make_data, size, message):
    """A damaged .irn file fails with a message saying what is wrong with its alpha plane."""
    with pytest.raises(CodecError, match=message):
        decode_alpha(make_data(gradient_alpha()), size)


def test_encode_alpha_needs_mode_l():
    with pytest.raises(ValueError, match=r"^alpha plane must have mode 'L', not 'RGB'$"):
        encode_alpha(random_rgb())


# --- tensors and padding ---------------------------------------------------------------

def test_tensor_round_trip_exact():
    img = random_rgb()
    t = image_to_tensor(img)
    assert t.shape == (1, 3, SIZE[1], SIZE[0]) and t.dtype == torch.float32
    assert t.min() >= 0.0 and t.max() <= 1.0
    assert tensor_to_image(t).tobytes() == img.tobytes()
    assert tensor_to_image(t[0]).tobytes() == img.tobytes()


def test_tensor_to_image_clamps_and_rounds_half_even():
    t = torch.tensor([-1.0, 2.0, 0.5 / 255, 1.5 / 255, 2.5 / 255]).view(1, 5).expand(3, 1, 5)
    assert pixels(tensor_to_image(t).getchannel("R")) == [0, 255, 0, 2, 2]


def test_tensor_to_image_bad_shape():
    with pytest.raises(ValueError):
        tensor_to_image(torch.zeros(2, 3, 4, 4))


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (17, 13)])
@pytest.mark.parametrize("multiple", [2, 4])
def test_pad_and_crop(size, multiple):
    x = image_to_tensor(random_rgb(size))
    padded, pad_x, pad_y = pad_to_multiple(x, multiple)
    h, w = padded.shape[-2:]
    assert h % multiple == 0 and w % multiple == 0
    assert (w - size[0], h - size[1]) == (pad_x, pad_y)
    assert pad_x < multiple and pad_y < multiple
    assert torch.equal(crop(padded, *size), x)


def test_pad_reflects_when_possible():
    x = torch.arange(3.0).view(1, 1, 1, 3).expand(1, 1, 4, 3)
    padded, pad_x, _ = pad_to_multiple(x, 4)
    assert pad_x == 1 and padded[0, 0, 0].tolist() == [0.0, 1.0, 2.0, 1.0]


def test_pad_noop_when_divisible():
    x = torch.zeros(1, 3, 8, 4)
    padded, pad_x, pad_y = pad_to_multiple(x, 4)
    assert padded is x and (pad_x, pad_y) == (0, 0)


class _Pipe(io.RawIOBase):
    """A stream that cannot seek, yielding ``total`` bytes of ``data`` repeated, counting reads."""

    def __init__(self, data: bytes, total: int) -> None:
        self.data, self.left, self.read_bytes = data, total, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        out = (self.data * (n // max(len(self.data), 1) + 1))[:n]
        self.left -= n
        self.read_bytes += n
        return out


def test_an_endless_pipe_is_refused_after_a_bounded_read(monkeypatch):
    """`cat /dev/zero | irncodec encode /dev/stdin x.irn` must not buffer without bound."""
    from irncodec import imageio

    monkeypatch.setattr(imageio, "MAX_STREAM_BYTES", 10 << 20)
    pipe = _Pipe(b"\0", 1 << 40)
    with pytest.raises(ImageError, match="stream of more than 10 MiB: no image file is that large"):
        imageio.load_image(pipe)
    assert pipe.read_bytes <= (10 << 20) + (4 << 20)


def test_an_image_from_a_pipe_still_loads(photo):
    from irncodec import imageio

    buf = io.BytesIO()
    photo.save(buf, "PNG")
    img = imageio.load_image(_Pipe(buf.getvalue(), len(buf.getvalue())))
    assert img.tobytes() == photo.convert("RGB").tobytes()


def test_a_pipe_of_exactly_the_limit_is_read(monkeypatch):
    """The limit is "more than MAX_STREAM_BYTES": a stream of exactly that many bytes is fine."""
    data = png_bytes(random_rgb())
    monkeypatch.setattr(imageio, "MAX_STREAM_BYTES", len(data))
    assert load_image(_Pipe(data, len(data))).tobytes() == random_rgb().tobytes()


def test_a_one_byte_pipe_is_not_empty():
    """A pipe is buffered and read from its first byte: one byte is not an image, but not an empty file."""
    with pytest.raises(ImageError, match=r"^cannot identify image file <stream>: "):
        load_image(_Pipe(b"\x89", 1))


class _Failing(io.RawIOBase):
    """A stream (seekable or not) whose reads fail, like a disk or socket that errors."""

    def __init__(self, seekable: bool) -> None:
        self._seekable = seekable

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def tell(self) -> int:
        return 0

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def read(self, n: int = -1) -> bytes:
        raise OSError("device unplugged")


@pytest.mark.parametrize("seekable", [True, False])
def test_a_stream_that_fails_to_read(seekable):
    with pytest.raises(ImageError, match=r"^cannot read <stream>: device unplugged$"):
        load_image(_Failing(seekable))


# --- load_image: messages name the input ----------------------------------------------------

def test_messages_name_a_file_object_by_its_name_and_other_streams_as_stream(tmp_path):
    """The user must learn which input is bad: a file object's ``name``, else "<stream>"."""
    path = tmp_path / "notes.txt"
    path.write_text("hello, not an image\n")
    named = "^cannot identify image file " + re.escape(f"{path}:")
    with open(path, "rb") as fp, pytest.raises(ImageError, match=named):
        load_image(fp)
    with pytest.raises(ImageError, match=r"^cannot identify image file <stream>: not an image, "
                                         r"or a format Pillow cannot read$"):
        load_image(io.BytesIO(path.read_bytes()))


def test_open_errors_give_the_os_reason(tmp_path):
    """Other OS errors than the common ones say "cannot open" and the OS's own words (errno text)."""
    file = tmp_path / "a.png"
    random_rgb().save(file)
    below_a_file = file / "b.png"
    with pytest.raises(ImageError) as info:
        load_image(below_a_file)
    assert str(info.value) == f"cannot open {below_a_file}: {os.strerror(errno.ENOTDIR)}"


def test_permission_denied_even_as_root(tmp_path, monkeypatch):
    """test_load_permission_denied skips as root: fake the OS refusal instead."""
    path = tmp_path / "secret.png"

    def refuse(file, mode="r"):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))

    monkeypatch.setattr(imageio, "open", refuse, raising=False)
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert str(info.value) == f"permission denied: {path}"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """A PNG chunk (PNG spec, 5.3): length, type, data, CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_pillow_warnings_other_than_size_do_not_refuse_an_image():
    """Only the decompression-bomb warning is an error: a readable but odd file still loads.
    Here an APNG control chunk saying 0 frames (invalid, APNG spec), which Pillow warns about."""
    img = random_rgb()
    data = png_bytes(img)
    ihdr_end = 8 + 25  # signature, then IHDR: 4 length + 4 type + 13 data + 4 CRC
    odd = data[:ihdr_end] + _png_chunk(b"acTL", struct.pack(">II", 0, 0)) + data[ihdr_end:]
    with pytest.warns(UserWarning, match="APNG"):
        loaded = load_image(io.BytesIO(odd))
    assert loaded.tobytes() == img.tobytes()


def test_an_empty_exif_block_is_not_passed_on():
    """info["exif"] holds EXIF data (a TIFF structure) or is absent: an empty eXIf chunk is dropped."""
    out = io.BytesIO()
    random_rgb().save(out, format="PNG", exif=b"Exif\0\0")
    assert _png_chunk(b"eXIf", b"") in out.getvalue()
    assert "exif" not in load_image(io.BytesIO(out.getvalue())).info


def test_a_stream_left_at_its_end_opens_as_with_pillow():
    """Pillow reads from the first byte wherever the position is; a BytesIO just saved to is not empty."""
    img = random_rgb()
    out = io.BytesIO()
    img.save(out, format="PNG")  # position: the end
    assert load_image(out).tobytes() == img.tobytes() == Image.open(out).convert("RGB").tobytes()


def test_exif_that_is_not_a_tiff_structure_is_ignored_not_fatal():
    """Viewers show a photo whose EXIF block is damaged; so does the codec: the pixels as
    stored (no orientation to apply) and no EXIF passed on."""
    img = random_rgb()
    out = io.BytesIO()
    img.save(out, format="PNG", exif=b"garbage!")
    loaded = load_image(io.BytesIO(out.getvalue()))
    assert loaded.tobytes() == img.tobytes() and "exif" not in loaded.info


# --- frames ------------------------------------------------------------------------------------

COLOURS = ((250, 0, 0), (0, 250, 0), (0, 0, 250))


def _animation(format: str) -> bytes:
    frames = [Image.new("RGB", (6, 4), colour) for colour in COLOURS]
    out = io.BytesIO()
    frames[0].save(out, format=format, save_all=True, append_images=frames[1:])
    return out.getvalue()


def test_frame_chosen_from_a_stream():
    """frame= works for file objects as for paths, and a stream of frames needs it."""
    data = _animation("GIF")
    for frame, colour in enumerate(COLOURS):
        assert load_image(io.BytesIO(data), frame).convert("RGB").getpixel((2, 2)) == colour
    with pytest.raises(ImageError, match=r"^<stream> has 3 frames and an \.irn file holds one image: "):
        load_image(io.BytesIO(data))


@pytest.mark.parametrize("format, kind", [("TIFF", "pages"), ("GIF", "frames")])
def test_several_frames_are_named_pages_in_a_tiff(format, kind):
    """A TIFF's images are pages; the message says which numbers to choose from."""
    with pytest.raises(ImageError, match=rf"^<stream> has 3 {kind} and an \.irn file holds one image: choose one with "
                                         r"--frame N \(frame=N in Python\), 0 for the first to 2 for the last$"):
        load_image(io.BytesIO(_animation(format)))


def test_a_frame_out_of_range_lists_the_frames_there_are():
    with pytest.raises(ImageError, match=r"^<stream> has no frame 3: it has 3 frames, 0 to 2$"):
        load_image(io.BytesIO(_animation("GIF")), 3)


def test_a_format_without_frames_has_only_frame_0():
    """JPEG files (Pillow gives them no n_frames) hold one image: frame 0, and no frame 1."""
    out = io.BytesIO()
    random_rgb().save(out, format="JPEG")
    assert load_image(io.BytesIO(out.getvalue()), 0).size == SIZE
    with pytest.raises(ImageError, match=r"^<stream> has no frame 1: it has one frame, 0$"):
        load_image(io.BytesIO(out.getvalue()), 1)


def test_merge_alpha_messages():
    from irncodec.errors import FormatError
    rgb, alpha = Image.new("RGB", (3, 2)), Image.new("L", (3, 2))
    cases = [
        ((rgb, None, "P"), "unknown image mode 'P': expected one of L, RGB, LA, RGBA"),
        ((rgb, None, "RGBA"), "image mode 'RGBA' needs alpha plane, but the file lacks one"),
        ((rgb, alpha, "L"), "image mode 'L' has no alpha plane, but the file stores one"),
        ((rgb, Image.new("L", (2, 3)), "LA"), "alpha plane is 2x3, image is 3x2"),
    ]
    for args, message in cases:
        with pytest.raises(FormatError) as info:
            merge_alpha(*args)
        assert str(info.value) == message
