"""Image loading, mode normalisation, alpha planes, tensors and padding."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

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
    img = Image.fromarray(np.array([[-5, 65535, 100000]], dtype=np.int32), "I")
    rgb, _, _ = split_alpha(img)
    assert pixels(rgb.getchannel("R")) == [0, 255, 255]


def test_cmyk_converted():
    img = Image.new("CMYK", (3, 2), (0, 255, 255, 0))  # pure red
    rgb, alpha, mode = split_alpha(img)
    assert (mode, alpha, rgb.getpixel((0, 0))) == ("RGB", None, (255, 0, 0))


@pytest.mark.parametrize("mode", ["F", "HSV", "LAB"])
def test_unsupported_mode(mode):
    with pytest.raises(ImageError, match=f"unsupported image mode '{mode}'"):
        split_alpha(Image.new(mode, (3, 2)))


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


@pytest.mark.parametrize("make_data, size", [
    (lambda a: encode_alpha(a), (SIZE[0] + 1, SIZE[1])),       # wrong size
    (lambda a: png_bytes(a.convert("RGB")), SIZE),              # wrong mode
    (lambda a: encode_alpha(a)[:-20], SIZE),                    # truncated
    (lambda a: b"not a png at all", SIZE),                      # garbage
    (lambda a: b"", SIZE),
])
def test_decode_alpha_rejects(make_data, size):
    with pytest.raises(CodecError):
        decode_alpha(make_data(gradient_alpha()), size)


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
    with pytest.raises(ImageError, match="stream of more than 10 MiB"):
        imageio.load_image(pipe)
    assert pipe.read_bytes <= (10 << 20) + (4 << 20)


def test_an_image_from_a_pipe_still_loads(photo):
    from irncodec import imageio

    buf = io.BytesIO()
    photo.save(buf, "PNG")
    img = imageio.load_image(_Pipe(buf.getvalue(), len(buf.getvalue())))
    assert img.tobytes() == photo.convert("RGB").tobytes()
