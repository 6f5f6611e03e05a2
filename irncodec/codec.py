"""Encode images to ``.irn`` bytes and back: the library's main entry points.

Encoding runs the IRN forward (HR -> LR + z), rounds the LR image to 8 bits
and stores it with an LR codec; z is dropped. Decoding decodes the LR image
and runs the network backwards with z from its prior (Gaussian or, for SAIN
models, a learned mixture): its mean by default, or a draw with a fixed seed,
so a file always decodes to the same pixels on one machine.
"""

from __future__ import annotations

import io
import math
import numbers
import os
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from . import container, imageio, tiling, zoo
from .container import Header, IrnFile
from .errors import CodecError, FormatError, ImageError, ModelError
from .lr_codecs import LRCodec, get_codec
from .models import IRN

#: Seed of the z drawn at decode time, fixed so decoding is deterministic.
Z_SEED = 0
DEFAULT_CODEC = "jpeg"
#: z used at decode: 0 decodes with the prior's mean, which measured better in
#: RGB PSNR than sampling (see README); 1 samples from the model's own prior.
DEFAULT_TEMPERATURE: float | None = 0.0

#: What ``encode`` takes: a PIL image, a path, a binary file, an image file's
#: bytes, or a uint8 array (H x W, or H x W x 1/3/4: grey, RGB, RGBA).
ImageSource = Image.Image | str | os.PathLike | BinaryIO | bytes | bytearray | memoryview | np.ndarray
#: What ``decode`` takes: ``.irn`` bytes, a parsed file, a path or a binary file.
IrnSource = bytes | bytearray | memoryview | IrnFile | str | os.PathLike | BinaryIO

_ARRAY_MODES = {1: "L", 3: "RGB", 4: "RGBA"}  # by channels


def as_image(image: ImageSource) -> Image.Image:
    """The input of ``encode`` as a fully loaded PIL image, or one clear ImageError."""
    if isinstance(image, Image.Image):
        try:
            image.load()
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise ImageError(f"cannot read the image: {exc}") from None
        return image
    if isinstance(image, np.ndarray):
        return _array_image(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return imageio.load_image(io.BytesIO(bytes(image)))
    if isinstance(image, (str, os.PathLike)) or callable(getattr(image, "read", None)):
        return imageio.load_image(image)
    raise ImageError(f"cannot encode a {type(image).__name__}: give a PIL image, a path, a binary file, "
                     "an image file's bytes or a uint8 array")


def _array_image(array: np.ndarray) -> Image.Image:
    channels = 1 if array.ndim == 2 else array.shape[-1] if array.ndim == 3 else 0
    if array.dtype != np.uint8 or channels not in (1, 3, 4) or 0 in array.shape:
        raise ImageError(f"cannot encode an array of shape {array.shape} and dtype {array.dtype}: "
                         "give uint8 H x W (grey) or H x W x 1, 3 or 4 (grey, RGB, RGBA)")
    if array.ndim == 3 and channels == 1:
        array = array[..., 0]
    return Image.fromarray(np.ascontiguousarray(array), _ARRAY_MODES[channels])


def as_irn(data: IrnSource) -> IrnFile:
    """The input of ``decode`` as a parsed ``.irn`` file, or one clear FormatError."""
    if isinstance(data, IrnFile):
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return container.unpack(data)
    if isinstance(data, (str, os.PathLike)) or callable(getattr(data, "read", None)):
        return container.read(data)
    raise FormatError(f"cannot decode a {type(data).__name__}: give .irn bytes, an IrnFile, a path "
                      "or a binary file")


def _resolve_model(model: str | None, scale: int | None, codec: str, quality: int) -> str:
    if model is None:
        return zoo.default_model(2 if scale is None else scale, codec, quality)
    return model


def _lr_codec(name: str, net: IRN, model_ref: str, **options: str) -> LRCodec:
    """The LR codec ``name``; the entropy codec is the model's own learned coder."""
    if name != "entropy":
        return get_codec(name, **options)
    if net.lr_coder is None:
        raise ModelError(f"model '{model_ref}' has no entropy coder: the entropy codec needs an "
                         "irn-x*-entropy-q* model (see 'irncodec models')")
    return get_codec(name, coder=net.lr_coder, **options)


def _check_size(img: Image.Image) -> None:
    """Refuse images an ``.irn`` file may not hold, before any work is done."""
    limit = container.max_pixels_limit()
    if max(img.size) > container.MAX_DIMENSION or img.width * img.height > limit:
        raise ImageError(
            f"image of {img.width}x{img.height} is too large: at most {container.MAX_DIMENSION} "
            f"pixels a side and {limit} pixels in all (set {container.MAX_PIXELS_ENV} to change)"
        )


def downscale(model: IRN, image: Image.Image, device: str | torch.device = "cpu") -> tuple[Image.Image, int, int]:
    """The 8-bit LR image the network makes from an RGB image, and the padding used.

    Large images go through the network in overlapping tiles (see :mod:`irncodec.tiling`).
    """
    if image.mode != "RGB":
        raise ImageError(f"expected an RGB image, got mode '{image.mode}' (use split_alpha first)")
    pixels, pad_x, pad_y = imageio.pad_pixels_to_multiple(np.asarray(image), model.scale)
    lr = tiling.downscale_tiled(model, pixels, device=device)
    return Image.fromarray(lr, "RGB"), pad_x, pad_y


def upscale(model: IRN, lr_image: Image.Image, size: tuple[int, int],
            temperature: float | None = DEFAULT_TEMPERATURE,
            device: str | torch.device = "cpu") -> Image.Image:
    """The RGB image of ``size`` the network reconstructs from an LR image (tiled when large)."""
    lr = np.asarray(lr_image.convert("RGB"))
    hr = tiling.upscale_tiled(model, lr, temperature, Z_SEED, device=device)
    width, height = size
    return Image.fromarray(np.ascontiguousarray(hr[:height, :width]), "RGB")


class Source:
    """An input image split the way every encode needs it: RGB, alpha plane, mode."""

    def __init__(self, image: ImageSource) -> None:
        img = as_image(image)
        _check_size(img)
        self.rgb, alpha, self.mode = imageio.split_alpha(img)
        self.alpha = imageio.encode_alpha(alpha) if alpha is not None else b""

    @property
    def pixels(self) -> int:
        return self.rgb.width * self.rgb.height

    def file(self, net: IRN, model_ref: str, codec: str, quality: int, payload: bytes,
             padding: tuple[int, int]) -> IrnFile:
        """The ``.irn`` file of an LR payload made from this image."""
        header = Header(
            model=zoo.model_name_for(model_ref), scale=net.scale, width=self.rgb.width, height=self.rgb.height,
            mode=self.mode, pad_x=padding[0], pad_y=padding[1], codec=codec, quality=quality,
            fingerprint=zoo.fingerprint(net),
        )
        return IrnFile(header, payload, self.alpha)


def load_encoder(codec: str, quality: int | None, scale: int | None, model: str | None,
                 subsampling: str | None, device: str | torch.device = "cpu") -> tuple[IRN, str, LRCodec, int]:
    """The network, its name, the LR codec and the validated quality an encode uses."""
    options = {"subsampling": subsampling} if subsampling is not None else {}
    lr_codec = get_codec(codec, **options)
    quality = lr_codec.validate_quality(lr_codec.default_quality if quality is None else quality)
    model_ref = _resolve_model(model, scale, lr_codec.name, quality)
    net = zoo.load_model(model_ref, device)
    if scale is not None and net.scale != scale:
        raise ModelError(f"model '{model_ref}' is x{net.scale}, but scale {scale} was asked for")
    return net, model_ref, _lr_codec(lr_codec.name, net, model_ref, **options), quality


def encode(
    image: ImageSource,
    quality: int | None = None,
    codec: str | None = None,
    scale: int | None = None,
    model: str | None = None,
    subsampling: str | None = None,
    device: str | torch.device = "cpu",
    target_bpp: float | None = None,
) -> bytes:
    """Compress an image (PIL image, path or file) to ``.irn`` bytes.

    ``quality`` is the LR codec's quality (its default when None): for
    ``entropy``, the rate level, each level its own model. ``model`` is a zoo
    name or ``.safetensors`` path; by default the shipped model for ``scale``
    (2 unless given) trained for ``codec`` (and level) is used, or the plain one.

    ``target_bpp`` instead asks for a size: the file of best quality (RGB PSNR)
    with at most that many bits per pixel, over every shipped scale, codec and
    quality (only those given, when ``codec`` or ``scale`` is); see
    :mod:`irncodec.ratecontrol`. It excludes ``quality`` and ``model``.
    """
    if target_bpp is not None:
        from .ratecontrol import encode_to_target

        if quality is not None or model is not None:
            raise CodecError("a target size picks the quality and the model itself: give no quality or model")
        return encode_to_target(image, target_bpp, codec, scale, subsampling, device).data
    net, model_ref, lr_codec, quality = load_encoder(codec or DEFAULT_CODEC, quality, scale, model,
                                                     subsampling, device)
    source = Source(image)
    lr_image, pad_x, pad_y = downscale(net, source.rgb, device)
    payload = lr_codec.encode(lr_image, quality)
    return container.pack(source.file(net, model_ref, lr_codec.name, quality, payload, (pad_x, pad_y)))


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
) -> Image.Image:
    """Decompress an ``.irn`` file (bytes, path or binary file) to a PIL image in the
    original mode and size.

    ``temperature`` scales the spread of the z drawn around the prior's mean
    (0: the mean, the default; 1 or None: the model's prior). ``model``
    overrides the model named in the file (needed for files made with a
    ``.safetensors`` path rather than a shipped model).
    """
    _check_temperature(temperature)
    irn = as_irn(data)
    h = irn.header
    net = load_decoder(h, model, device)
    lr_image = _lr_codec(h.codec, net, model or h.model).decode(irn.payload, (h.lr_width, h.lr_height))
    rgb = upscale(net, lr_image, (h.width, h.height), temperature, device)
    alpha = imageio.decode_alpha(irn.alpha, (h.width, h.height)) if irn.alpha else None
    return imageio.merge_alpha(rgb, alpha, h.mode)


def decode_lr(data: IrnSource, model: str | None = None,
              device: str | torch.device = "cpu") -> Image.Image:
    """Only the stored LR image (a thumbnail), without running the rescaling network.

    An ``entropy`` payload needs its model's coder (``model`` overrides the
    one named in the file); Pillow payloads need no model.
    """
    irn = as_irn(data)
    h = irn.header
    if h.codec == "entropy":
        lr_codec = _lr_codec(h.codec, load_decoder(h, model, device), model or h.model)
    else:
        lr_codec = get_codec(h.codec)
    return lr_codec.decode(irn.payload, (h.lr_width, h.lr_height))
