"""Encode images to ``.irn`` bytes and back: the library's main entry points.

Encoding runs the IRN forward (HR -> LR + z), rounds the LR image to 8 bits
and stores it with an LR codec; z is dropped. Decoding decodes the LR image
and runs the network backwards with z from its prior (Gaussian or, for SAIN
models, a learned mixture): its mean by default, or a draw with a fixed seed,
so a file always decodes to the same pixels on one machine.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import BinaryIO

import torch
from PIL import Image

from . import container, imageio, metadata, zoo
from .container import Header, IrnFile
from .errors import CodecError, FormatError, ModelError
from .lr_codecs import DEFAULT_CODEC, codec_class, get_codec
from .models import IRN
from .pipeline import (
    DEFAULT_TEMPERATURE,
    Z_SEED,
    ImageSource,
    Source,
    as_image,
    downscale,
    load_encoder,
    upscale,
)
from .threads import limited_threads

__all__ = ["DEFAULT_CODEC", "DEFAULT_TEMPERATURE", "Z_SEED", "ImageSource", "IrnSource", "Source", "as_image",
           "as_irn", "decode", "decode_lr", "downscale", "encode", "load_decoder", "load_encoder", "upscale"]

#: What ``decode`` takes: ``.irn`` bytes, a parsed file, a path or a binary file.
IrnSource = bytes | bytearray | memoryview | IrnFile | str | os.PathLike | BinaryIO

def as_irn(data: IrnSource) -> IrnFile:
    """The input of ``decode`` as a parsed ``.irn`` file, or one clear FormatError.

    A JPEG, WebP or PNG file that carries an ``.irn`` file (:mod:`irncodec.viewable`) is taken as that file.
    """
    if isinstance(data, IrnFile):
        return data
    from . import viewable

    if isinstance(data, (bytes, bytearray, memoryview)):
        return container.unpack(viewable.unwrap(data))
    if isinstance(data, (str, os.PathLike)) or callable(getattr(data, "read", None)):
        return viewable.read(data)
    raise FormatError(f"cannot decode a {type(data).__name__}: give .irn bytes, an IrnFile, a path "
                      "or a binary file")


def encode(
    image: ImageSource,
    quality: int | None = None,
    codec: str | None = None,
    scale: float | None = None,
    model: str | None = None,
    subsampling: str | None = None,
    device: str | torch.device = "cpu",
    target_bpp: float | None = None,
    threads: int | None = None,
    keep_metadata: bool = True,
    frame: int | None = None,
) -> bytes:
    """Compress an image (PIL image, path or file) to ``.irn`` bytes.

    ``quality`` is the LR codec's quality (its default when None): for
    ``entropy``, the rate level, each level its own model. ``model`` is a zoo
    name or ``.safetensors`` path; by default the shipped model for ``scale``
    (2 unless given) trained for ``codec`` (and level) is used, or the plain one.
    ``scale`` is any number from 1.1 to 4: the LR image is 1/scale of the image's
    size; a scale that is no network's (2, 4) uses the next network up on the
    image resampled to fit (a version-5 file).

    ``target_bpp`` instead asks for a size: the file of best quality (RGB PSNR)
    with at most that many bits per pixel, over every shipped scale, codec and
    quality (only those given, when ``codec`` or ``scale`` is); see
    :mod:`irncodec.ratecontrol`. It excludes ``quality`` and ``model``.

    ``threads`` sets torch's CPU threads for this call (None: as they are).

    The image's ICC profile and EXIF data are kept (a format-version-4 file;
    :mod:`irncodec.metadata`) unless ``keep_metadata`` is False; an image read
    from a file is turned upright by its EXIF orientation first. An input of
    several frames (an animation, a multi-page TIFF) is an ImageError unless
    ``frame`` (0 for the first) picks one.
    """
    with limited_threads(threads):
        if target_bpp is not None:
            from .ratecontrol import encode_to_target

            if quality is not None or model is not None:
                raise CodecError("a target size picks the quality and the model itself: give no quality or model")
            return encode_to_target(image, target_bpp, codec, scale, subsampling, device,
                                    keep_metadata=keep_metadata, frame=frame).data
        net, model_ref, lr_codec, quality = load_encoder(codec or DEFAULT_CODEC, quality, scale, model,
                                                         subsampling, device)
        source = Source(image, keep_metadata, frame)
        lr_image, padding, size = source.downscale(net, scale, device)  # scale: checked by load_encoder
        payload = lr_codec.encode(lr_image, quality)
        return container.pack(source.file(net, model_ref, lr_codec, quality, payload, padding, size))


def _check_temperature(temperature: float | None) -> None:
    """A spread for z must be a finite number >= 0 (NaN or inf would decode to a black image)."""
    if temperature is None:
        return
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise CodecError(f"temperature must be a number, got {type(temperature).__name__}")
    if not math.isfinite(temperature) or temperature < 0:
        raise CodecError(f"temperature must be a finite number >= 0, got {temperature}")


def load_decoder(header: Header, model: str | None = None, device: str | torch.device = "cpu") -> IRN:
    """The network that decodes a file: the one it names (or ``model``), checked against
    the file's scale and, for version-2 files, the fingerprint of the weights that made it."""
    ref = model or header.model
    net = zoo.load_model(ref, device)
    if net.scale != header.scale:
        raise ModelError(f"model '{ref}' is x{net.scale}, but the file is x{header.scale}")
    if header.fingerprint is not None and zoo.fingerprint(net) != header.fingerprint:
        hint = ("give the weights it was made with (-m PATH / model=)" if model is None
                else "these are not the weights it was made with")
        raise ModelError(f"the file was encoded with other weights than model '{ref}' (file's weights "
                         f"{header.fingerprint.hex()}, model's {zoo.fingerprint(net).hex()}): {hint}")
    return net


def decode(
    data: IrnSource,
    model: str | None = None,
    temperature: float | None = DEFAULT_TEMPERATURE,
    device: str | torch.device = "cpu",
    threads: int | None = None,
) -> Image.Image:
    """Decompress an ``.irn`` file (bytes, path or binary file) to a PIL image in the
    original mode and size.

    ``temperature`` scales the spread of the z drawn around the prior's mean
    (0: the mean; 1: the model's prior; None, the default: the model's own
    ``decode_temperature``, 0 for most shipped models). ``model``
    overrides the model named in the file (needed for files made with a
    ``.safetensors`` path rather than a shipped model). ``threads`` sets torch's
    CPU threads for this call (None: as they are).

    The ICC profile and EXIF data the file carries are in the image's
    ``info["icc_profile"]`` and ``info["exif"]``, so ``image.save`` can write them.
    """
    _check_temperature(temperature)
    irn = as_irn(data)
    h = irn.header
    with limited_threads(threads):
        net = load_decoder(h, model, device)
        lr_image = codec_class(h.codec).for_model(net, model or h.model).decode(irn.payload,
                                                                                (h.lr_width, h.lr_height))
        rgb = upscale(net, lr_image, (h.width, h.height), temperature, device, h.network_size)
    alpha = imageio.decode_alpha(irn.alpha, (h.width, h.height)) if irn.alpha else None
    image = imageio.merge_alpha(rgb, alpha, h.mode)
    image.info.update(metadata.to_info(irn.metadata))
    return image


def decode_lr(data: IrnSource, model: str | None = None,
              device: str | torch.device = "cpu") -> Image.Image:
    """Only the stored LR image (a thumbnail), without running the rescaling network.

    A learned coder's payload needs its model (``model`` overrides the one
    named in the file); image formats such as JPEG need none. The file's ICC
    profile and EXIF data are in ``info``, as for :func:`decode`.
    """
    irn = as_irn(data)
    h = irn.header
    kind = codec_class(h.codec)
    if kind.needs_model:
        lr_codec = kind.for_model(load_decoder(h, model, device), model or h.model)
    else:
        lr_codec = get_codec(h.codec)
    image = lr_codec.decode(irn.payload, (h.lr_width, h.lr_height))
    image.info.update(metadata.to_info(irn.metadata))
    return image
