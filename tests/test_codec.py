"""Library round trips: any image a user has comes back in its size and mode."""

import numpy as np
import pytest
from PIL import Image

import irncodec
from irncodec import container
from irncodec.errors import CodecError, FormatError, ImageError, ModelError
from irncodec.imageio import image_to_tensor
from irncodec.metrics import psnr

from .conftest import photo_like


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("codec,quality", [("png", None), ("jpeg", 90), ("webp", 80)])
def test_round_trip(tiny_weights, photo, scale, codec, quality):
    data = irncodec.encode(photo, quality=quality, codec=codec, model=tiny_weights[scale])
    header = container.unpack(data).header
    assert (header.scale, header.codec, header.model) == (scale, codec, f"tiny-x{scale}")
    out = irncodec.decode(data, model=tiny_weights[scale])
    assert out.size == photo.size and out.mode == "RGB"
    # a random tiny model is no good codec, but far from garbage (~6 dB)
    assert psnr(image_to_tensor(out), image_to_tensor(photo)) > {2: 12, 4: 10}[scale]


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
    a = irncodec.decode(data, model=tiny_weights[2], temperature=None)
    assert a.tobytes() == irncodec.decode(data, model=tiny_weights[2], temperature=None).tobytes()
    assert a.tobytes() != irncodec.decode(data, model=tiny_weights[2]).tobytes()


@pytest.mark.parametrize("scale", [2, 4])
def test_sain_models_round_trip(tiny_sain_weights, photo, scale):
    model = tiny_sain_weights[scale]
    data = irncodec.encode(photo, quality=70, codec="jpeg", model=model)
    out = irncodec.decode(data, model=model)
    assert out.size == photo.size and psnr(image_to_tensor(out), image_to_tensor(photo)) > 10
    assert out.tobytes() == irncodec.decode(data, model=model).tobytes()
    assert out.tobytes() != irncodec.decode(data, model=model, temperature=1).tobytes()


def test_encode_picks_the_model_trained_for_the_codec(monkeypatch):
    from irncodec import zoo

    shipped = {"irn-x2-small": {}, "sain-x2-jpeg-small": {}, "irn-x4-small": {}}
    monkeypatch.setattr(zoo, "_manifest", lambda: shipped)
    assert zoo.default_model(2, "jpeg") == "sain-x2-jpeg-small"
    assert zoo.default_model(2, "png") == "irn-x2-small"
    assert zoo.default_model(4, "jpeg") == "irn-x4-small"  # no x4 JPEG model in this zoo
    with pytest.raises(ModelError, match="scale"):
        zoo.default_model(3, "jpeg")
