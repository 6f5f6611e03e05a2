"""Library round trips: any image a user has comes back in its size and mode."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import irncodec
from irncodec import container, zoo
from irncodec.errors import CodecError, FormatError, ImageError, ModelError
from irncodec.metrics import psnr
from irncodec.tensors import image_to_tensor

from .conftest import photo_like


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("codec,quality", [("png", None), ("jpeg", 90), ("webp", 80)])
def test_round_trip(tiny_weights, photo, scale, codec, quality):
    data = irncodec.encode(photo, quality=quality, codec=codec, model=tiny_weights[scale])
    header = container.unpack(data).header
    assert (header.scale, header.codec, header.model) == (scale, codec, f"tiny-x{scale}")
    out = irncodec.decode(data, model=tiny_weights[scale])
    assert out.size == photo.size and out.mode == "RGB"
    # The codec's pipeline (padding, 8-bit LR, the LR codec, crop, channel order) against
    # the network's own round trip through the same stored LR image, computed here from
    # the model API: the only difference is the rounding of the output to 8 bits.
    # A random tiny model reconstructs at only 14-17 dB, so PSNR to the original could
    # not tell a channel swap (12-13 dB) from a correct decode; this comparison does.
    net = irncodec.load_model(tiny_weights[scale])
    lr = image_to_tensor(irncodec.decode_lr(data))
    with torch.no_grad():
        reference = net.upscale(lr, temperature=0.0).clamp(0, 1)
    assert psnr(image_to_tensor(out), reference[..., :photo.height, :photo.width]) > 45


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (17, 13), (2, 64)])
def test_odd_and_tiny_sizes(tiny_weights, size):
    img = photo_like(*size)
    for scale in (2, 4):
        data = irncodec.encode(img, codec="png", model=tiny_weights[scale])
        h = container.unpack(data).header
        assert (h.width + h.pad_x) % scale == 0 and (h.height + h.pad_y) % scale == 0
        assert irncodec.decode(data, model=tiny_weights[scale]).size == size


@pytest.mark.parametrize("mode", ["L", "1", "P", "RGBA", "LA", "CMYK", "I;16"])
def test_modes_restore(tiny_weights, photo, mode):
    img = photo.convert(mode) if mode != "I;16" else Image.fromarray(
        np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
    if mode in ("RGBA", "LA"):
        alpha = Image.linear_gradient("L").resize(photo.size)
        img.putalpha(alpha)
    expected = {"1": "L", "P": "RGB", "CMYK": "RGB", "I;16": "L"}.get(mode, mode)
    out = irncodec.decode(irncodec.encode(img, codec="png", model=tiny_weights[2]), model=tiny_weights[2])
    assert out.mode == expected and out.size == img.size
    if mode in ("RGBA", "LA"):
        assert out.getchannel("A").tobytes() == img.getchannel("A").tobytes()


def test_decode_is_deterministic(tiny_weights, photo):
    data = irncodec.encode(photo, quality=80, model=tiny_weights[2])
    assert data == irncodec.encode(photo, quality=80, model=tiny_weights[2])
    a = irncodec.decode(data, model=tiny_weights[2])
    b = irncodec.decode(data, model=tiny_weights[2])
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.5, "1", True])
def test_bad_temperature_is_a_codec_error(tiny_weights, photo, bad):
    from irncodec.errors import CodecError

    data = irncodec.encode(photo, model=tiny_weights[2])
    with pytest.raises(CodecError, match="temperature"):
        irncodec.decode(data, model=tiny_weights[2], temperature=bad)


def test_temperature_zero_differs_from_sampling(tiny_weights, photo):
    data = irncodec.encode(photo, codec="png", model=tiny_weights[2])
    assert irncodec.decode(data, model=tiny_weights[2], temperature=0).tobytes() != \
        irncodec.decode(data, model=tiny_weights[2], temperature=1).tobytes()


def test_higher_quality_costs_more_bytes(tiny_weights, photo):
    sizes = [len(irncodec.encode(photo, quality=q, model=tiny_weights[2])) for q in (20, 60, 95)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_decode_lr_is_the_thumbnail(tiny_weights, photo):
    data = irncodec.encode(photo, codec="png", model=tiny_weights[4])
    assert irncodec.decode_lr(data).size == (12, 10)


def test_errors(tiny_weights, photo):
    with pytest.raises(CodecError):
        irncodec.encode(photo, codec="gif", model=tiny_weights[2])
    with pytest.raises(CodecError):
        irncodec.encode(photo, quality=101, model=tiny_weights[2])
    with pytest.raises(ModelError, match="x2"):
        irncodec.encode(photo, scale=4, model=tiny_weights[2])
    with pytest.raises(ModelError, match="unknown model"):
        irncodec.encode(photo, model="no-such-model")
    data = irncodec.encode(photo, model=tiny_weights[2])
    with pytest.raises(ModelError):
        irncodec.decode(data)  # the file names tiny-x2, which is not in the zoo
    with pytest.raises(ModelError, match="x4"):
        irncodec.decode(data, model=tiny_weights[4])
    with pytest.raises(FormatError):
        irncodec.decode(data[:-3], model=tiny_weights[2])


def test_payload_that_does_not_decode_is_codec_error(tiny_weights, photo):
    irn = container.unpack(irncodec.encode(photo, codec="jpeg", model=tiny_weights[2]))
    bad = container.IrnFile(irn.header, b"\xff\xd8 not really a jpeg", irn.alpha)
    with pytest.raises(CodecError):
        irncodec.decode(container.pack(bad), model=tiny_weights[2])


def test_image_over_pixel_limit_is_image_error(tiny_weights, photo, monkeypatch):
    monkeypatch.setenv("IRNCODEC_MAX_PIXELS", "1000")
    with pytest.raises(ImageError, match="too large"):
        irncodec.encode(photo, model=tiny_weights[2])


def test_sampling_from_the_prior_is_seeded(tiny_weights, photo):
    data = irncodec.encode(photo, codec="png", model=tiny_weights[2])
    a = irncodec.decode(data, model=tiny_weights[2], temperature=1)
    assert a.tobytes() == irncodec.decode(data, model=tiny_weights[2], temperature=1).tobytes()
    assert a.tobytes() != irncodec.decode(data, model=tiny_weights[2]).tobytes()


def test_a_model_decodes_at_its_own_temperature_unless_told(tmp_path, photo):
    """decode_temperature is how a model is meant to be decoded: the default of decode,
    upscale and rate control; an explicit temperature still wins."""
    from irncodec.models import IRNConfig

    from .conftest import make_tiny_model

    sampled = make_tiny_model(2, decode_temperature=1.0)
    path = tmp_path / "sampled.safetensors"
    zoo.export(sampled, path)
    assert zoo.load_model(str(path)).config.decode_temperature == 1.0
    data = irncodec.encode(photo, codec="png", model=str(path))
    default = irncodec.decode(data, model=str(path)).tobytes()
    assert default == irncodec.decode(data, model=str(path), temperature=1).tobytes()
    assert default != irncodec.decode(data, model=str(path), temperature=0).tobytes()
    with pytest.raises(ValueError, match="decode_temperature must be >= 0"):
        IRNConfig(decode_temperature=-0.5)
    assert IRNConfig.from_dict({"scale": 2}).decode_temperature == 0.0  # weights from before the field


@pytest.mark.parametrize("scale", [2, 4])
def test_sain_models_round_trip(tiny_sain_weights, photo, scale):
    model = tiny_sain_weights[scale]
    data = irncodec.encode(photo, quality=70, codec="jpeg", model=model)
    out = irncodec.decode(data, model=model)
    assert out.size == photo.size and psnr(image_to_tensor(out), image_to_tensor(photo)) > 10
    assert out.tobytes() == irncodec.decode(data, model=model).tobytes()
    assert out.tobytes() != irncodec.decode(data, model=model, temperature=1).tobytes()


def test_encode_picks_the_model_trained_for_the_codec(monkeypatch):
    assert zoo.CODEC_MODELS[(2, "jpeg")] == "sain-x2-jpeg-rate-v2"
    shipped = {"irn-x2-small-v3": {}, "sain-x2-jpeg-rate-v2": {}, "irn-x4-small": {}}
    monkeypatch.setattr(zoo, "_manifest", lambda: shipped)
    assert zoo.default_model(2, "jpeg") == "sain-x2-jpeg-rate-v2"
    assert zoo.default_model(2, "png") == "irn-x2-small-v3"
    assert zoo.default_model(4, "jpeg") == "irn-x4-small"  # no x4 JPEG model in this zoo
    with pytest.raises(ModelError, match="scale"):
        zoo.default_model(3, "jpeg")


# --- the weights a file was made with ---------------------------------------------------------

def test_files_record_the_weights_fingerprint(tiny_weights, photo):
    from irncodec import zoo

    data = irncodec.encode(photo, codec="png", model=tiny_weights[2])
    h = container.unpack(data).header
    assert h.version == 2 and h.fingerprint == zoo.fingerprint(zoo.load_model(tiny_weights[2]))
    assert data[4] == 2 and data[45 + len(h.model):].startswith(b"\x89PNG")  # after the 45 + n header bytes


def test_other_weights_under_the_same_name_are_refused(tiny_weights, photo, tmp_path):
    """A file made with custom/tiny-x2.safetensors must not decode with other weights of that
    name (a retrained file at the same path, or a shipped model of the same name)."""
    from irncodec import zoo

    from .conftest import make_tiny_model

    data = irncodec.encode(photo, codec="png", model=tiny_weights[2])
    retrained = tmp_path / "tiny-x2.safetensors"   # same stem, other values
    zoo.export(make_tiny_model(2, seed=1), retrained)
    with pytest.raises(ModelError, match=r"other weights than model .*tiny-x2.*file's weights [0-9a-f]{16}"):
        irncodec.decode(data, model=str(retrained))
    # the same values stored again (another path) are the same weights
    same = tmp_path / "copy.safetensors"
    shutil.copyfile(tiny_weights[2], same)
    assert irncodec.decode(data, model=str(same)).size == photo.size


def test_fingerprint_depends_on_values_not_on_storage(tiny_weights, tmp_path):
    from irncodec import zoo

    from .conftest import make_tiny_model

    model = make_tiny_model(2)
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    zoo.export(model, a, record={"note": "one"})
    zoo.export(model, b, record={"note": "another record, same weights"})
    assert zoo.fingerprint(zoo.load_model(str(a))) == zoo.fingerprint(zoo.load_model(str(b)))
    zoo.export(model, b, half=False)  # float32 values differ from the fp16-stored ones
    assert zoo.fingerprint(zoo.load_model(str(a))) != zoo.fingerprint(zoo.load_model(str(b)))
    assert len(zoo.fingerprint(model)) == 8


def test_version_1_files_decode_as_before(tiny_weights, photo):
    """A version-1 file (no fingerprint) decodes to exactly what its version-2 twin does."""
    from dataclasses import replace

    irn = container.unpack(irncodec.encode(photo, quality=80, model=tiny_weights[2]))
    v1 = container.pack(container.IrnFile(replace(irn.header, fingerprint=None), irn.payload, irn.alpha))
    assert v1[4] == 1 and len(v1) == len(container.pack(irn)) - 8
    expected = irncodec.decode(irn, model=tiny_weights[2]).tobytes()
    assert irncodec.decode(v1, model=tiny_weights[2]).tobytes() == expected


# --- what the library accepts, and one clear error for anything else -------------------------

@pytest.mark.parametrize("bad", [None, 123, 1.5, ["a"], object()])
def test_wrong_input_types_are_irn_errors(tiny_weights, bad):
    with pytest.raises(ImageError, match=f"cannot encode a {type(bad).__name__}: give a PIL image"):
        irncodec.encode(bad, model=tiny_weights[2])
    with pytest.raises(FormatError, match=f"cannot decode a {type(bad).__name__}: give .irn bytes"):
        irncodec.decode(bad, model=tiny_weights[2])
    with pytest.raises(FormatError, match="cannot decode a"):
        irncodec.decode_lr(bad)


@pytest.mark.parametrize("array", [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 2), np.uint8),
                                   np.zeros((2, 8, 8, 3), np.uint8), np.zeros((0, 8, 3), np.uint8)])
def test_unusable_arrays_are_image_errors(tiny_weights, array):
    with pytest.raises(ImageError, match=r"cannot encode an array of shape"):
        irncodec.encode(array, model=tiny_weights[2])


def test_arrays_bytes_paths_and_files_encode_and_decode(tiny_weights, photo, tmp_path):
    import io

    rgb = np.asarray(photo)
    expected = irncodec.encode(photo, codec="png", model=tiny_weights[2])
    assert irncodec.encode(rgb, codec="png", model=tiny_weights[2]) == expected
    buf = io.BytesIO()
    photo.save(buf, "PNG")
    assert irncodec.encode(buf.getvalue(), codec="png", model=tiny_weights[2]) == expected
    grey = irncodec.decode(irncodec.encode(rgb[..., 0], codec="png", model=tiny_weights[2]), model=tiny_weights[2])
    assert grey.mode == "L" and grey.size == photo.size
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 77, np.uint8)])
    out = irncodec.decode(irncodec.encode(rgba, codec="png", model=tiny_weights[2]), model=tiny_weights[2])
    assert out.mode == "RGBA" and set(np.asarray(out)[..., 3].ravel()) == {77}
    path = tmp_path / "a.irn"
    path.write_bytes(expected)
    want = irncodec.decode(expected, model=tiny_weights[2]).tobytes()
    assert irncodec.decode(path, model=tiny_weights[2]).tobytes() == want
    assert irncodec.decode(str(path), model=tiny_weights[2]).tobytes() == want
    with open(path, "rb") as f:
        assert irncodec.decode(f, model=tiny_weights[2]).tobytes() == want
    with pytest.raises(FormatError, match=r"cannot read .*missing\.irn"):
        irncodec.decode(tmp_path / "missing.irn", model=tiny_weights[2])


def test_truncated_and_closed_images_are_image_errors(tiny_weights, photo):
    import io

    buf = io.BytesIO()
    photo.save(buf, "PNG")
    truncated = Image.open(io.BytesIO(buf.getvalue()[:200]))
    with pytest.raises(ImageError, match="cannot read the image: image file is truncated"):
        irncodec.encode(truncated, model=tiny_weights[2])
    closed = Image.open(io.BytesIO(buf.getvalue()))
    closed.close()
    with pytest.raises(ImageError, match="cannot read the image"):
        irncodec.encode(closed, model=tiny_weights[2])


# --- what encode passes on (each would be ignored silently otherwise) ----------------------

def test_encode_honours_jpeg_subsampling(tiny_weights, photo):
    import io

    from PIL import JpegImagePlugin

    for subsampling, factor in (("4:4:4", 0), ("4:2:2", 1), ("4:2:0", 2)):
        data = irncodec.encode(photo, codec="jpeg", subsampling=subsampling, model=tiny_weights[2])
        with Image.open(io.BytesIO(container.unpack(data).payload)) as lr:
            assert JpegImagePlugin.get_sampling(lr) == factor, subsampling


def test_encode_runs_the_network_on_the_device_asked_for(tiny_weights, photo, monkeypatch, model_loads):
    from irncodec import tiling

    tiles = []
    tiled = tiling.downscale_tiled
    monkeypatch.setattr(tiling, "downscale_tiled", lambda model, pixels, device="cpu", **kw:
                        tiles.append(str(device)) or tiled(model, pixels, **kw))
    irncodec.encode(photo, codec="png", model=tiny_weights[2], device="cuda:5")
    assert model_loads == ["cuda:5"] and tiles == ["cuda:5"]


def test_a_target_size_passes_every_choice_to_rate_control(photo, monkeypatch):
    from types import SimpleNamespace

    from irncodec import ratecontrol

    calls = []

    def fake(image, target_bpp, codec, scale, subsampling, device, **kwargs):
        calls.append((image, target_bpp, codec, scale, subsampling, device, kwargs, torch.get_num_threads()))
        return SimpleNamespace(data=b"file")

    monkeypatch.setattr(ratecontrol, "encode_to_target", fake)
    threads = 1 if torch.get_num_threads() > 1 else 2
    assert irncodec.encode(photo, codec="jpeg", scale=1.5, subsampling="4:4:4", device="cuda:1", target_bpp=0.5,
                           keep_metadata=False, frame=0, threads=threads) == b"file"
    assert calls == [(photo, 0.5, "jpeg", 1.5, "4:4:4", "cuda:1", dict(keep_metadata=False, frame=0), threads)]
    for given in (dict(quality=50), dict(model="irn-x2-small")):
        with pytest.raises(CodecError) as info:
            irncodec.encode(photo, target_bpp=0.5, **given)
        assert str(info.value) == "a target size picks the quality and the model itself: give no quality or model"
    assert len(calls) == 1


def test_load_decoder_says_what_to_do_about_other_weights(tiny_weights, photo, tmp_path, monkeypatch):
    """Without ``model`` the hint is to give the weights; with it, that these are not them."""
    from dataclasses import replace

    from irncodec.codec import load_decoder

    h = container.unpack(irncodec.encode(photo, codec="png", model=tiny_weights[2])).header
    net = load_decoder(h, tiny_weights[2])  # the device defaults to the CPU
    assert next(net.parameters()).device == torch.device("cpu")
    wrong = replace(h, fingerprint=bytes(8))
    ours = zoo.fingerprint(net).hex()
    with pytest.raises(ModelError) as info:
        load_decoder(wrong, tiny_weights[2])
    assert str(info.value) == (f"the file was encoded with other weights than model '{tiny_weights[2]}' (file's "
                               f"weights 0000000000000000, model's {ours}): these are not the weights it was made with")
    devices = []
    monkeypatch.setattr(zoo, "load_model", lambda ref, device="cpu": devices.append(device) or net)
    with pytest.raises(ModelError) as info:
        load_decoder(wrong, device="cuda:2")  # (the file's own name, resolved by the patched zoo)
    assert devices == ["cuda:2"]
    assert str(info.value) == (f"the file was encoded with other weights than model '{h.model}' (file's weights "
                               f"0000000000000000, model's {ours}): give the weights it was made with "
                               "(-m PATH / model=)")


def test_decode_loads_on_the_device_and_threads_asked_for(tiny_weights, photo, monkeypatch):
    from irncodec import codec

    data = irncodec.encode(photo, codec="png", model=tiny_weights[2])
    seen = []

    class Loaded(Exception):
        """Stops the decode once the network would be loaded (there is no cuda:4 here)."""

    def load_decoder(h, model=None, device="cpu"):
        seen.append((str(device), torch.get_num_threads()))
        raise Loaded

    monkeypatch.setattr(codec, "load_decoder", load_decoder)
    threads = 1 if torch.get_num_threads() > 1 else 2
    with pytest.raises(Loaded):
        irncodec.decode(data, model=tiny_weights[2], device="cuda:4", threads=threads)
    assert seen == [("cuda:4", threads)]


def test_bad_inputs_to_decode_say_what_they_are():
    with pytest.raises(FormatError) as info:
        irncodec.decode(3.5)  # type: ignore[arg-type]
    assert str(info.value) == "cannot decode a float: give .irn bytes, an IrnFile, a path or a binary file"
    with pytest.raises(CodecError) as info:
        irncodec.decode(b"irn", temperature="hot")  # type: ignore[arg-type]
    assert str(info.value) == "temperature must be a number, got str"
