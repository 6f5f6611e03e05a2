"""Scales between the networks' own (1.1 to 4): the image resampled for the next network up."""

import io
import math
import zlib
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import irncodec
from irncodec import container, pipeline
from irncodec.cli import main
from irncodec.errors import CodecError, FormatError, ModelError
from irncodec.metrics import psnr
from irncodec.tensors import image_to_tensor

from .conftest import photo_like


def rgba(width: int, height: int) -> Image.Image:
    img = photo_like(width, height).convert("RGBA")
    alpha = np.add.outer(np.arange(height) * 7, np.arange(width) * 5) % 256
    img.putalpha(Image.fromarray(alpha.astype(np.uint8), "L"))
    return img


@pytest.mark.parametrize("scale,net_scale", [(1.5, 2), (3, 4), (1.25, 2), (1.1, 2), (2.5, 4)])
def test_odd_sized_rgba_round_trip(tiny_weights, scale, net_scale):
    """Size and mode come back, alpha is lossless, and the LR image is 1/scale of the image."""
    img = rgba(61, 37)
    data = irncodec.encode(img, codec="png", scale=scale, model=tiny_weights[net_scale])
    h = container.unpack(data).header
    assert h.version == container.RESAMPLE_VERSION and h.scale == net_scale
    assert (h.lr_width, h.lr_height) == (round(61 / scale), round(37 / scale))
    assert h.network_size == (net_scale * h.lr_width, net_scale * h.lr_height) and (h.pad_x, h.pad_y) == (0, 0)
    out = irncodec.decode(data, model=tiny_weights[net_scale])
    assert out.size == img.size and out.mode == "RGBA"
    assert out.getchannel("A").tobytes() == img.getchannel("A").tobytes()
    assert irncodec.decode_lr(data).size == (h.lr_width, h.lr_height)


def test_resampled_decode_is_the_network_output_resampled(tiny_weights):
    """The decoder runs the network on the stored LR image and resamples its output with Lanczos
    to the image's size: computed here from the model API and Pillow, independently of the codec."""
    img = photo_like(50, 34)
    data = irncodec.encode(img, codec="png", scale=1.5, model=tiny_weights[2])
    h = container.unpack(data).header
    net = irncodec.load_model(tiny_weights[2])
    with torch.no_grad():
        hr = net.upscale(image_to_tensor(irncodec.decode_lr(data)), temperature=0.0).clamp(0, 1)
    pixels = (hr[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)[:h.network_height, :h.network_width]
    reference = Image.fromarray(pixels, "RGB").resize(img.size, Image.Resampling.LANCZOS)
    out = irncodec.decode(data, model=tiny_weights[2])
    diff = np.abs(np.asarray(out, np.int16) - np.asarray(reference, np.int16))
    assert diff.max() <= 1  # the network's output rounded the same way, within one level


def test_smaller_scale_keeps_more(tiny_weights):
    """Through a lossless LR image, a shipped x2 model keeps more of a photo at scale 1.25 than at 2,
    and scale 2 writes the same file as before resampling existed (version 2)."""
    img = photo_like(96, 64)
    two = irncodec.encode(img, codec="png", scale=2, model="irn-x2-small")
    assert container.unpack(two).header.version == 2
    quality = {}
    for scale in (1.25, 1.5, 2):
        data = irncodec.encode(img, codec="png", scale=scale, model="irn-x2-small")
        quality[scale] = psnr(image_to_tensor(irncodec.decode(data)), image_to_tensor(img))
    assert quality[1.25] > quality[1.5] > quality[2], quality


@pytest.mark.parametrize("bad", [1.0, 0.5, 4.5, math.nan, math.inf, "2", True])
def test_bad_scales_are_one_clear_error(photo, bad):
    with pytest.raises(CodecError, match="scale"):
        irncodec.encode(photo, codec="png", scale=bad)


def test_model_too_small_for_the_scale(tiny_weights, photo):
    with pytest.raises(ModelError, match="too small for scale 3"):
        irncodec.encode(photo, codec="png", scale=3, model=tiny_weights[2])


def test_network_size():
    assert pipeline.network_size((768, 512), 2, 2) is None
    assert pipeline.network_size((768, 512), 1.5, 2) == (1024, 682)
    assert pipeline.network_size((768, 512), 3, 4) == (1024, 684)
    assert pipeline.network_size((1, 1), 1.5, 2) == (2, 2)
    assert pipeline.network_size((4, 4), 1.9, 2) is None  # rounds to the image's own size: no resampling
    assert pipeline.network_scale_for(1.1) == 2 and pipeline.network_scale_for(2.01) == 4


def _header(**changes) -> container.Header:
    fields = dict(model="m", scale=2, width=61, height=37, mode="RGB", pad_x=0, pad_y=0, codec="png",
                  quality=0, fingerprint=bytes(8), network_size=(82, 50))
    fields.update(changes)
    return container.Header(**fields)  # type: ignore[arg-type]


def test_version_5_header_round_trips_and_sizes():
    f = container.IrnFile(_header(), b"payload")
    data = container.pack(f)
    assert data[4] == 5 and len(data) == f.size == container.HEADER_FIXED_SIZES[5] + 1 + 7
    back = container.unpack(data)  # as read, payload_version is 3 (version 3 on may carry a step block)
    assert replace(back.header, payload_version=1) == f.header and back.payload == f.payload
    assert (back.header.lr_width, back.header.lr_height) == (41, 25)
    assert back.header.effective_scale == pytest.approx(math.sqrt(61 / 41 * 37 / 25))
    with_meta = f.with_metadata(container.Metadata(exif=b"II*\x00rest"))
    assert container.unpack(container.pack(with_meta)).metadata == with_meta.metadata


@pytest.mark.parametrize("size,message", [
    ((61, 37), "equals the image's size"),
    ((0, 50), "each side must be"),
    ((82, 2**18), "each side must be"),
    ((82, 51), "padded size must be the next multiple of 2"),
    ((100_000, 100_000), "exceeds the limit"),
])
def test_bad_network_sizes_are_refused_by_pack_and_unpack(size, message):
    with pytest.raises(ValueError, match=message):
        container.pack(container.IrnFile(_header(network_size=size), b"p"))
    good = bytearray(container.pack(container.IrnFile(_header(), b"p")))
    at = container.HEADER_FIXED_SIZES[5] + 1 - 8 - 8  # the network size sits before the two CRCs
    good[at:at + 8] = size[0].to_bytes(4, "little") + size[1].to_bytes(4, "little")
    crc_at = len(good) - 1 - 8
    good[crc_at:crc_at + 4] = zlib.crc32(bytes(good[:crc_at])).to_bytes(4, "little")
    with pytest.raises(FormatError, match=message):
        container.unpack(bytes(good))


def test_cli_scale_and_info(tmp_path, tiny_weights):
    src = tmp_path / "in.png"
    rgba(60, 36).save(src)
    runner = CliRunner()
    out = tmp_path / "o.irn"
    result = runner.invoke(main, ["encode", str(src), str(out), "-c", "png", "-s", "1.5", "-m", tiny_weights[2]])
    assert result.exit_code == 0, result.output
    info = runner.invoke(main, ["info", str(out)])
    assert "x1.5 (the x2 network on the image resampled to 80x48)" in info.output and "version:" in info.output
    back = tmp_path / "o.png"
    assert runner.invoke(main, ["decode", str(out), str(back), "-m", tiny_weights[2]]).exit_code == 0
    assert Image.open(back).size == (60, 36)
    for bad in ("1", "4.5", "x"):
        result = runner.invoke(main, ["encode", str(src), str(tmp_path / f"b{bad}.irn"), "-s", bad])
        assert result.exit_code == 2 and "--scale" in result.output
        assert not (tmp_path / f"b{bad}.irn").exists()


def test_viewable_file_and_pillow_plugin_at_a_resampled_scale(tmp_path, tiny_weights):
    """A .jpg that carries a version-5 file shows the LR image and decodes like the .irn file;
    Pillow opens the .irn file at the image's size and reports the scale."""
    from irncodec import viewable

    img = photo_like(60, 36)
    data = irncodec.encode(img, codec="jpeg", quality=80, scale=1.5, model=tiny_weights[2])
    wrapped = viewable.wrap(data)
    assert Image.open(io.BytesIO(wrapped)).size == (40, 24)
    same = irncodec.decode(wrapped, model=tiny_weights[2]).tobytes()
    assert same == irncodec.decode(data, model=tiny_weights[2]).tobytes()
    path = tmp_path / "x.irn"
    path.write_bytes(data)
    with Image.open(path) as im:
        assert (im.format, im.size, im.info["irn_scale"], im.info["irn_version"]) == ("IRN", (60, 36), 1.5, 5)


@pytest.mark.parametrize(("size", "scale", "net_scale"), [((41, 27), 2, 2), ((41, 27), 1.5, 2), ((41, 27), 3, 4),
                                                          ((40, 28), 4, 4), ((33, 17), 1.1, 2)])
def test_lr_layout_is_what_downscale_makes(size, scale, net_scale):
    """Rate control's ranking sizes its Lanczos LR images with lr_layout: it must match the network's."""
    from irncodec import zoo
    from irncodec.pipeline import Source, lr_layout

    net = zoo.load_model(zoo.DEFAULT_MODELS[net_scale])
    lr_image, padding, resized = Source(Image.new("RGB", size, (90, 120, 30))).downscale(net, scale)
    assert lr_layout(size, scale, net_scale) == (resized, padding, lr_image.size)
