"""LR codecs: round trips, quality, determinism, registry and bad payloads."""

from __future__ import annotations

import io
import itertools
import re
import struct
import warnings
import zlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from irncodec import lr_codecs
from irncodec.container import Header, IrnFile, pack, unpack
from irncodec.errors import CodecError
from irncodec.lr_codecs import LRCodec, available_codecs, get_codec, register_codec
from irncodec.lr_codecs.pillow import PNG_END, PNG_SIGNATURE

SIZE = (17, 13)
LOSSY = ["jpeg", "webp"]


def gradient(size=SIZE) -> Image.Image:
    """A smooth image: lossy codecs should do well on it."""
    y, x = np.mgrid[0:size[1], 0:size[0]].astype(np.float32)
    rgb = np.stack([x * 255 / size[0], y * 255 / size[1], (x + y) * 255 / sum(size)], axis=-1)
    return Image.fromarray(np.round(rgb).astype(np.uint8), "RGB")


def noise(size=SIZE, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def psnr(a: Image.Image, b: Image.Image) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def test_available():
    assert {"jpeg", "png", "webp"} <= set(available_codecs())
    assert available_codecs() == sorted(available_codecs())


@pytest.mark.parametrize("name", ["jpeg", "png", "webp"])
def test_round_trip_size_and_mode(name):
    codec = get_codec(name)
    assert codec.name == name
    out = codec.decode(codec.encode(noise(), codec.default_quality), SIZE)
    assert out.mode == "RGB" and out.size == SIZE


def test_png_exact():
    img = noise()
    codec = get_codec("png")
    assert codec.lossless
    assert codec.decode(codec.encode(img, 0), SIZE).tobytes() == img.tobytes()


@pytest.mark.parametrize("name", LOSSY)
def test_lossy_psnr_sane(name):
    img = gradient((32, 24))
    codec = get_codec(name)
    assert psnr(codec.decode(codec.encode(img, 90), img.size), img) > 30


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
def test_jpeg_subsampling(subsampling):
    codec = get_codec("jpeg", subsampling=subsampling)
    with Image.open(io.BytesIO(codec.encode(noise(), 90))) as img:
        assert img.format == "JPEG" and img.size == SIZE


@pytest.mark.parametrize("name", LOSSY)
def test_higher_quality_more_bytes(name):
    codec = get_codec(name)
    sizes = [len(codec.encode(noise(), q)) for q in (20, 60, 95)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


@pytest.mark.parametrize("name", ["jpeg", "png", "webp"])
def test_deterministic_and_metadata_free(name):
    img = noise()
    img.info["icc_profile"] = b"not really a profile"
    img.info["exif"] = Image.Exif().tobytes()
    codec = get_codec(name)
    data = codec.encode(img, codec.default_quality)
    assert data == codec.encode(noise(), codec.default_quality)
    with Image.open(io.BytesIO(data)) as out:
        assert "icc_profile" not in out.info and "exif" not in out.info


@pytest.mark.parametrize("name, bad", [("jpeg", 0), ("jpeg", 101), ("webp", -1), ("webp", 101),
                                       ("jpeg", 50.0), ("webp", "75"), ("jpeg", True)])
def test_quality_out_of_range(name, bad):
    codec = get_codec(name)
    with pytest.raises(CodecError, match="quality"):
        codec.validate_quality(bad)
    with pytest.raises(CodecError, match="quality"):
        codec.encode(noise(), bad)


def test_quality_range_in_message():
    with pytest.raises(CodecError, match=r"1\.\.100"):
        get_codec("jpeg").validate_quality(0)


def test_quality_valid():
    assert get_codec("jpeg").validate_quality(np.int64(1)) == 1
    assert get_codec("webp").validate_quality(0) == 0
    assert get_codec("png").validate_quality(95) == 0


def test_unknown_codec():
    with pytest.raises(CodecError, match="unknown LR codec 'gif': choose from entropy, jpeg, png, webp"):
        get_codec("gif")


def test_bad_options():
    with pytest.raises(CodecError, match="subsampling"):
        get_codec("jpeg", subsampling="4:1:1")
    with pytest.raises(CodecError, match="option"):
        get_codec("png", subsampling="4:2:0")


def test_encode_rejects_non_rgb():
    with pytest.raises(CodecError, match="RGB"):
        get_codec("png").encode(noise().convert("RGBA"), 0)


def test_webp_size_limit():
    with pytest.raises(CodecError, match="16383"):
        get_codec("webp").encode(Image.new("RGB", (16384, 1)), 75)


@pytest.mark.parametrize("name, other", list(itertools.permutations(["jpeg", "png", "webp"], 2)))
def test_payload_of_other_format_rejected(name, other):
    payload = get_codec(other).encode(noise(), 75)
    with pytest.raises(CodecError, match=f"not a {name} stream"):
        get_codec(name).decode(payload, SIZE)


@pytest.mark.parametrize("name", ["jpeg", "png", "webp"])
@pytest.mark.parametrize("damage", ["garbage", "empty", "half", "last_byte", "trailing"])
def test_damaged_payload_rejected(name, damage):
    data = get_codec(name).encode(noise(), 75)
    data = {
        "garbage": b"\x89garbage" * 8,
        "empty": b"",
        "half": data[: len(data) // 2],
        "last_byte": data[:-1],
        "trailing": data + b"\x00",
    }[damage]
    with pytest.raises(CodecError):
        get_codec(name).decode(data, SIZE)


@pytest.mark.parametrize("name", ["jpeg", "png", "webp"])
def test_wrong_size_rejected(name):
    data = get_codec(name).encode(noise(), 75)
    with pytest.raises(CodecError, match="17x13"):
        get_codec(name).decode(data, (SIZE[0], SIZE[1] + 1))


def test_huge_declared_payload_refused_without_a_warning():
    """A payload claiming 144M pixels (above Pillow's bomb warning, below its error) is
    refused by its size before any pixel is read, with no DecompressionBombWarning on the way."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 12000, 12000, 8, 2, 0, 0, 0)
    data = PNG_SIGNATURE + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CodecError, match="12000x12000"):
            get_codec("png").decode(data + PNG_END, SIZE)


def test_png_payload_of_other_mode_rejected():
    out = io.BytesIO()
    noise().convert("L").save(out, format="PNG")
    with pytest.raises(CodecError, match="mode"):
        get_codec("png").decode(out.getvalue(), SIZE)


class RawCodec(LRCodec):
    """A codec registered by the tests: raw RGB bytes."""

    name: ClassVar[str] = "raw"
    file_id = 201
    lossless = True
    min_quality = max_quality = default_quality = 0

    def encode(self, image, quality):
        return image.tobytes()

    def decode(self, data, size):
        return Image.frombytes("RGB", size, data)


@pytest.fixture
def registry(monkeypatch):
    """A registry the test may add to, with RawCodec registered."""
    monkeypatch.setattr(lr_codecs.base, "_REGISTRY", dict(lr_codecs.base._REGISTRY))
    register_codec(RawCodec)


def test_register_new_codec(registry):
    assert "raw" in available_codecs()
    codec = get_codec("raw")
    assert codec.decode(codec.encode(noise(), 0), SIZE).tobytes() == noise().tobytes()
    with pytest.raises(ValueError, match="already taken"):
        register_codec(type("Impostor", (RawCodec,), {}))


def test_file_ids_are_the_ones_docs_format_md_fixes():
    """A codec's id is in every file written with it: the registry must match the spec forever."""
    spec = (Path(__file__).resolve().parents[1] / "docs" / "format.md").read_text()
    row = next(line for line in spec.splitlines() if "| codec " in line)
    documented = {name: int(file_id) for file_id, name in re.findall(r"(\d+) = `(\w+)`", row)}
    assert documented == lr_codecs.codec_ids()


def test_a_registered_codec_is_stored_and_read_by_the_container(registry):
    """The registry is the extension point: a new codec needs no edit to the container."""
    header = Header(model="m", scale=2, width=4, height=2, mode="RGB", pad_x=0, pad_y=0,
                    codec="raw", quality=0, fingerprint=bytes(8))
    data = pack(IrnFile(header, get_codec("raw").encode(noise((2, 1)), 0)))
    assert data[19 + len("m")] == RawCodec.file_id  # the codec byte, at 19 + n (docs/format.md)
    read_back = unpack(data)
    assert read_back.header.codec == "raw"
    assert get_codec("raw").decode(read_back.payload, (2, 1)).tobytes() == noise((2, 1)).tobytes()


def test_file_ids_and_names_are_unique(monkeypatch):
    monkeypatch.setattr(lr_codecs.base, "_REGISTRY", dict(lr_codecs.base._REGISTRY))
    with pytest.raises(ValueError, match=r"file id 1 .* already taken by .jpeg."):
        register_codec(type("Clash", (lr_codecs.PngCodec,), {"name": "clash", "file_id": 1}))
    with pytest.raises(ValueError, match="needs a file_id"):
        register_codec(type("NoId", (lr_codecs.PngCodec,), {"name": "no-id", "file_id": None}))


def test_options_come_from_the_codec_classes():
    assert lr_codecs.codecs_with_option("subsampling") == ["jpeg"]
    assert lr_codecs.option_choices("subsampling") == ["4:2:0", "4:2:2", "4:4:4"]
    with pytest.raises(CodecError, match="does not take option"):
        get_codec("webp", subsampling="4:2:0")
    with pytest.raises(CodecError, match="4:2:0, 4:2:2, 4:4:4"):
        get_codec("jpeg", subsampling="4:1:1")


def test_per_level_and_model_bound_codecs_say_so():
    """What the zoo, codec and CLI ask instead of testing names."""
    entropy = lr_codecs.codec_class("entropy")
    assert entropy.per_level_models and entropy.needs_model
    assert not any(lr_codecs.codec_class(n).needs_model for n in ("png", "jpeg", "webp"))
    with pytest.raises(CodecError, match="unknown LR codec 'nope'"):
        lr_codecs.codec_class("nope")
