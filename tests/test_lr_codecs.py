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
from irncodec.errors import CodecError, ModelError
from irncodec.lr_codecs import LRCodec, available_codecs, get_codec, register_codec
from irncodec.lr_codecs.pillow import PNG_END, PNG_SIGNATURE

from .conftest import photo_like

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
    for name in ("jpeg", "webp"):  # both ends of the range are qualities
        codec = get_codec(name)
        assert codec.validate_quality(codec.max_quality) == codec.max_quality
        assert codec.validate_quality(codec.min_quality) == codec.min_quality
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


@pytest.mark.parametrize("name", ["jpeg", "png", "webp"])
def test_damage_messages(name):
    codec = get_codec(name)
    data = codec.encode(noise(), 75)
    # (a WebP cut short fails earlier, in Pillow's decoder: "not a valid webp stream")
    for damaged in (data + b"\x00",) if name == "webp" else (data[:-1], data + b"\x00"):
        with pytest.raises(CodecError) as info:
            codec.decode(damaged, SIZE)
        assert str(info.value) == f"LR payload is not a complete {name} stream (truncated, or followed by extra bytes)"
    with pytest.raises(CodecError) as info:
        codec.decode(data, (SIZE[0], SIZE[1] + 1))
    assert str(info.value) == "LR image is 17x13, the header says 17x14"


def test_a_corrupt_png_inside_is_not_a_valid_stream():
    data = bytearray(get_codec("png").encode(noise(), 75))
    at = data.index(b"IDAT") + 20
    data[at] ^= 0xFF  # the chunk's CRC no longer matches
    with pytest.raises(CodecError, match=r"^LR payload is not a valid png stream: \S"):
        get_codec("png").decode(bytes(data), SIZE)


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
    with pytest.raises(CodecError) as info:
        get_codec("png", subsampling="4:2:0", step=2)
    assert str(info.value) == "LR codec 'png' does not take option(s) step, subsampling"
    with pytest.raises(CodecError, match="4:2:0, 4:2:2, 4:4:4"):
        get_codec("jpeg", subsampling="4:1:1")


def test_per_level_and_model_bound_codecs_say_so():
    """What the zoo, codec and CLI ask instead of testing names."""
    entropy = lr_codecs.codec_class("entropy")
    assert entropy.per_level_models and entropy.needs_model
    assert not any(lr_codecs.codec_class(n).needs_model for n in ("png", "jpeg", "webp"))
    with pytest.raises(CodecError, match="unknown LR codec 'nope'"):
        lr_codecs.codec_class("nope")
    with pytest.raises(CodecError) as info:  # not even hashable: still the codec error
        lr_codecs.codec_class(["png"])  # type: ignore[arg-type]
    assert str(info.value) == "unknown LR codec ['png']: choose from entropy, jpeg, png, webp"


def test_file_ids_span_one_byte(registry):
    """The header stores the id in one byte: 0 (png's) and 255 are ids, -1 and 256 are not,
    and a class without one is refused by name."""
    register_codec(type("Id255", (RawCodec,), {"name": "id255", "file_id": 255}))
    with pytest.raises(ValueError, match="file id 0 of LR codec 'id0' is already taken by 'png'"):
        register_codec(type("Id0", (RawCodec,), {"name": "id0", "file_id": 0}))
    for file_id in (-1, 256):
        with pytest.raises(ValueError, match=rf"'bad{file_id}' needs a file_id in 0\.\.255, got {file_id}"):
            register_codec(type("Bad", (RawCodec,), {"name": f"bad{file_id}", "file_id": file_id}))
    no_id = type("NoId", (LRCodec,), {"name": "no-id", "lossless": True})
    with pytest.raises(ValueError, match=r"needs a file_id in 0\.\.255, got None"):
        register_codec(no_id)


def test_option_choices_merge_every_codec_in_order(registry):
    register_codec(type("Sub", (RawCodec,), {"name": "sub", "file_id": 202,
                                             "options": {"subsampling": ("4:4:4", "4:1:1")}}))
    assert lr_codecs.option_choices("subsampling") == ["4:2:0", "4:2:2", "4:4:4", "4:1:1"]


def test_quality_help_is_what_q_help_shows():
    assert lr_codecs.codec_class("png").quality_help() == "none (lossless)"
    assert lr_codecs.codec_class("jpeg").quality_help() == "1-100"
    assert lr_codecs.codec_class("entropy").quality_help() == "a shipped rate level (1 = smallest; see models)"


def test_codecs_without_a_standard_file_form_say_so():
    with pytest.raises(CodecError, match=r"^entropy payloads cannot be written as a standard image file$"):
        lr_codecs.codec_class("entropy").embed(b"payload", b"carried")
    assert lr_codecs.codec_class("jpeg").describe(get_codec("jpeg").encode(noise(), 50)) == ""


def test_reconstruction_is_what_a_decoder_gets():
    """The default encode_with_reconstruction: the payload, and Pillow's own decode of it."""
    data, image = get_codec("jpeg").encode_with_reconstruction(noise(), 40)
    assert data == get_codec("jpeg").encode(noise(), 40)
    assert image.size == SIZE and image.tobytes() == Image.open(io.BytesIO(data)).convert("RGB").tobytes()


def test_pillow_codecs_train_as_they_are_used():
    from .conftest import make_tiny_model

    codec = lr_codecs.codec_class("webp").for_training(make_tiny_model(2))
    assert type(codec) is lr_codecs.codec_class("webp")


def test_entropy_codec_for_training_builds_tables_on_a_copy():
    """Validation during training codes with tables built from the current weights (quantiles
    solved, tables rebuilt even where they existed), and leaves the model being trained as it was."""
    import copy

    import torch

    from irncodec.lr_codecs.entropy import EntropyCodec

    from .conftest import ENTROPY_OPTIONS, make_tiny_model

    net = make_tiny_model(2, **ENTROPY_OPTIONS).train()
    net.lr_coder.update(force=True)  # stale tables from earlier weights...
    with torch.no_grad():
        for p in net.lr_coder.parameters():
            p.add_(0.05 * torch.randn_like(p))  # ...then training moved on
    before = copy.deepcopy(net.lr_coder.state_dict())
    codec = EntropyCodec.for_training(net)
    after = net.lr_coder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) and before.keys() == after.keys()
    assert all(m.training for m in net.lr_coder.modules()) and not codec.coder.training
    expected = copy.deepcopy(net.lr_coder).eval()
    expected.update(force=True, update_quantiles=True)
    got = codec.coder.state_dict()
    assert not torch.equal(expected.entropy_bottleneck.quantiles, before["entropy_bottleneck.quantiles"])
    assert all(torch.equal(v, got[k]) for k, v in expected.state_dict().items())
    lr = photo_like(16, 12)
    data, image = codec.encode_with_reconstruction(lr, 1)
    assert codec.decode(data, lr.size).tobytes() == image.tobytes()
    with pytest.raises(ModelError, match="'the model in training' has no entropy coder"):
        EntropyCodec.for_training(make_tiny_model(2))


def test_entropy_describe_names_the_step():
    from irncodec.lr_codecs.entropy import EntropyCodec

    assert EntropyCodec.describe(bytes(4) + (1600).to_bytes(2, "little") + b"rest") == "step 1.6"
    assert EntropyCodec.describe(b"\x01\x02\x03\x04rest") == ""  # no step block: step 1
    assert EntropyCodec.describe(bytes(4) + (9999).to_bytes(2, "little")).startswith("damaged step block (")


# --- what the Pillow codecs write, checked against the format specs ----------------------


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, body) of each segment up to the first scan, read by the JPEG spec (B.1.1)."""
    assert data[:2] == b"\xff\xd8"
    out, pos = [], 2
    while data[pos + 1] != 0xDA:
        assert data[pos] == 0xFF
        end = pos + 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        out.append((data[pos + 1], data[pos + 4:end]))
        pos = end
    return out


def huffman_bits(segments: list[tuple[int, bytes]]) -> list[bytes]:
    """The 16 code-length counts (BITS) of every Huffman table in the DHT segments (B.2.4.2)."""
    tables = []
    for marker, body in segments:
        pos = 0
        while marker == 0xC4 and pos < len(body):
            bits = body[pos + 1:pos + 17]
            tables.append(bits)
            pos += 17 + sum(bits)
    return tables


#: BITS of the example tables of ITU T.81 Annex K (K.3 to K.6): libjpeg's defaults.
ANNEX_K_BITS = [bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]),
                bytes([0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]),
                bytes([0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D]),
                bytes([0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77])]


@pytest.mark.parametrize("subsampling, luma", [("4:2:0", 0x22), ("4:2:2", 0x21), ("4:4:4", 0x11)])
def test_jpeg_is_baseline_with_the_sampling_asked_and_optimised_tables(subsampling, luma):
    """SOF0 (baseline, not SOF2 progressive) with Y sampled HxV = luma and Cb, Cr 1x1;
    optimised Huffman tables, i.e. none of the Annex K tables a plain libjpeg encode writes."""
    segments = jpeg_segments(get_codec("jpeg", subsampling=subsampling).encode(photo_like(40, 24), 75))
    markers = [m for m, _ in segments]
    assert 0xC0 in markers and not {0xC1, 0xC2, 0xC3} & set(markers)
    sof = dict(segments)[0xC0]
    assert sof[:6] == bytes([8]) + struct.pack(">HH", 24, 40) + bytes([3])
    assert [sof[6 + 3 * i:8 + 3 * i] for i in range(3)] == [bytes([1, luma]), bytes([2, 0x11]), bytes([3, 0x11])]
    tables = huffman_bits(segments)
    assert len(tables) == 4 and not set(tables) & set(ANNEX_K_BITS)
    plain = io.BytesIO()
    photo_like(40, 24).save(plain, format="JPEG", quality=75)
    assert sorted(huffman_bits(jpeg_segments(plain.getvalue()))) == sorted(ANNEX_K_BITS)  # the reference holds


def test_png_is_smaller_than_any_plain_zlib_level():
    """'Maximum compression': Pillow's optimize, which beats every compress_level alone on a photo."""
    img = photo_like(64, 48)
    data = get_codec("png").encode(img, 0)
    plain = []
    for level in range(10):
        out = io.BytesIO()
        img.save(out, format="PNG", compress_level=level)
        plain.append(len(out.getvalue()))
    assert len(data) < min(plain)
    with Image.open(io.BytesIO(data)) as out:
        assert out.tobytes() == img.tobytes()


def test_webp_uses_the_best_compressing_method():
    """method=6 as the docstring says: smaller than libwebp's default effort (4) on a photo."""
    img = photo_like(64, 48)
    default = io.BytesIO()
    img.save(default, format="WEBP", quality=75)
    assert len(get_codec("webp").encode(img, 75)) < len(default.getvalue())


def test_side_limits_hold_on_each_axis_and_are_inclusive():
    """WebP stores up to 16383 pixels a side: either side one more is refused by name, by irncodec."""
    codec = get_codec("webp")
    for size in ((16383, 1), (1, 16383)):
        with Image.open(io.BytesIO(codec.encode(Image.new("RGB", size, (9, 99, 199)), 50))) as out:
            assert out.format == "WEBP" and out.size == size
    with pytest.raises(CodecError, match=r"^webp stores images of 1\.\.16383 pixels a side, this LR image is 1x16384$"):
        codec.encode(Image.new("RGB", (1, 16384)), 50)


def test_what_the_encoder_itself_refuses_is_a_codec_error():
    """libjpeg stops at 65500 pixels a side, below JPEG's 65535: Pillow's error, said with the size."""
    with pytest.raises(CodecError, match=r"^jpeg cannot encode this 65501x1 image: \S"):
        get_codec("jpeg").encode(Image.new("RGB", (65501, 1)), 75)


def test_webp_completeness_is_the_riff_size():
    """RIFF's size field counts the bytes after it: 12 bytes declaring 4 is a whole (empty) file."""
    webp = lr_codecs.codec_class("webp")
    assert webp.is_complete(b"RIFF" + struct.pack("<I", 4) + b"WEBP")
    assert not webp.is_complete(b"RIFF" + struct.pack("<I", 4) + b"WEB")
    assert not webp.is_complete(b"RIFF" + struct.pack("<I", 4) + b"WEBPX")
    assert not webp.is_complete(b"RIFF" + struct.pack("<I", 0))


@pytest.mark.parametrize("name", ["jpeg", "png", "webp"])
def test_image_format_payloads_need_only_version_1_readers(name):
    assert get_codec(name).format_version(get_codec(name).encode(noise(), 75)) == 1


def test_for_model_passes_options_on():
    from irncodec.lr_codecs import codec_class

    codec = codec_class("jpeg").for_model(None, "any", subsampling="4:4:4")  # type: ignore[arg-type]
    assert codec.save_options(80)["subsampling"] == "4:4:4"
