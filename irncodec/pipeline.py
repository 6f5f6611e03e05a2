"""The steps every encode shares: the input image checked and split, the network
run each way, and the network and LR codec an encode uses.

:mod:`irncodec.codec` (the public API) and :mod:`irncodec.ratecontrol` build
on these; this module imports neither.
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

from . import container, imageio, metadata, tensors, tiling, zoo
from .container import Header, IrnFile, Metadata
from .errors import CodecError, ImageError, ModelError
from .lr_codecs import LRCodec, get_codec
from .models import IRN

#: Seed of the z drawn at decode time, fixed so decoding is deterministic.
Z_SEED = 0
#: z used at decode unless a temperature is given: None takes the model's own
#: (``IRNConfig.decode_temperature``): 0, the prior's mean, for most models, which
#: measured better in RGB PSNR than sampling (docs/models.md); 1 samples the prior.
DEFAULT_TEMPERATURE: float | None = None

#: What ``encode`` takes: a PIL image, a path, a binary file, an image file's
#: bytes, or a uint8 array (H x W, or H x W x 1/3/4: grey, RGB, RGBA).
ImageSource = Image.Image | str | os.PathLike | BinaryIO | bytes | bytearray | memoryview | np.ndarray

_ARRAY_MODES = {1: "L", 3: "RGB", 4: "RGBA"}  # by channels

#: The scales an encode takes. A scale that is not a network's own (2 or 4) uses the
#: smallest network scale above it, on the image resampled so that the LR image is
#: 1/scale of its size (``docs/format.md``, version 5): e.g. 1.5 is the x2 network on
#: the image enlarged by 4/3.
MIN_SCALE, MAX_SCALE = 1.1, 4.0
#: How images are resampled to the network's size and back: Pillow's Lanczos, which
#: measured 2-4 dB closer than bicubic over an enlarge-and-shrink round trip on Kodak
#: (40.6 against 36.3 dB on kodim01 at scale 1.5), so the resampling costs next to nothing.
RESAMPLING = Image.Resampling.LANCZOS


def as_image(image: ImageSource, frame: int | None = None) -> Image.Image:
    """The input of ``encode`` as a fully loaded PIL image, or one clear ImageError.

    A file (path, file object, bytes) is read upright (:func:`imageio.load_image`);
    a PIL image is taken as it is, pixels and ``info`` (its EXIF orientation too).
    An input of several frames needs ``frame`` (0 for the first) to say which.
    """
    if isinstance(image, Image.Image):
        try:
            if frame is None and getattr(image, "n_frames", 1) == 1:
                image.load()
                return image
            position = image.tell()
            imageio.select_frame(image, frame, "the image")
            try:
                image.load()
                return image.copy()
            finally:
                image.seek(position)
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise ImageError(f"cannot read the image: {exc}") from None
    if isinstance(image, np.ndarray):
        if frame not in (None, 0):
            raise ImageError(f"an array is one image: there is no frame {frame!r}")
        return _array_image(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return imageio.load_image(io.BytesIO(bytes(image)), frame)
    if isinstance(image, (str, os.PathLike)) or callable(getattr(image, "read", None)):
        return imageio.load_image(image, frame)
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


def check_scale(scale: object) -> float | int | None:
    """``scale`` as a number in [MIN_SCALE, MAX_SCALE] (an int when whole), or one clear CodecError."""
    if scale is None:
        return None
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(float(scale)):
        raise CodecError(f"scale must be a number from {MIN_SCALE:g} to {MAX_SCALE:g}, got {scale!r}")
    value = float(scale)
    if not MIN_SCALE <= value <= MAX_SCALE:
        raise CodecError(f"unsupported scale {value:g}: choose a number from {MIN_SCALE:g} to {MAX_SCALE:g}")
    return int(value) if value.is_integer() else value


def network_scale_for(scale: float) -> int:
    """The smallest network scale (a shipped model's) at least ``scale``."""
    return min(s for s in zoo.DEFAULT_MODELS if s >= scale)


def network_size(size: tuple[int, int], scale: float, net_scale: int) -> tuple[int, int] | None:
    """The size to resample an image of ``size`` to, so that an x``net_scale`` network makes an
    LR image 1/``scale`` of it (each side rounded, at least 1); None when no resampling is needed."""
    if scale == net_scale:
        return None
    resized = tuple(net_scale * max(1, round(side / scale)) for side in size)
    return None if resized == tuple(size) else (resized[0], resized[1])


def lr_layout(size: tuple[int, int], scale: float, net_scale: int
              ) -> tuple[tuple[int, int] | None, tuple[int, int], tuple[int, int]]:
    """Where an image of ``size`` goes at ``scale`` through an x``net_scale`` network: the size
    it is resampled to (None: not resampled, see :func:`network_size`), the padding the
    network adds, and the LR image's size; what :meth:`Source.downscale` makes, without
    running the network."""
    resized = network_size(size, scale, net_scale)
    width, height = resized or size
    pad_x, pad_y = tensors.padding_to_multiple(width, height, net_scale)
    return resized, (pad_x, pad_y), ((width + pad_x) // net_scale, (height + pad_y) // net_scale)


def _resolve_model(model: str | None, scale: float | None, codec: str, quality: int) -> str:
    if model is None:
        return zoo.default_model(2 if scale is None else network_scale_for(scale), codec, quality)
    return model


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
    pixels, pad_x, pad_y = tensors.pad_pixels_to_multiple(np.asarray(image), model.scale)
    lr = tiling.downscale_tiled(model, pixels, device=device)
    return Image.fromarray(lr, "RGB"), pad_x, pad_y


def upscale(model: IRN, lr_image: Image.Image, size: tuple[int, int],
            temperature: float | None = DEFAULT_TEMPERATURE,
            device: str | torch.device = "cpu", network_size: tuple[int, int] | None = None) -> Image.Image:
    """The RGB image of ``size`` the network reconstructs from an LR image (tiled when large),
    with z at ``temperature`` (None: the model's own); from ``network_size`` resampled to
    ``size`` when the encoder resampled the image (None: it did not)."""
    if temperature is None:
        temperature = model.config.decode_temperature
    lr = np.asarray(lr_image.convert("RGB"))
    hr = tiling.upscale_tiled(model, lr, temperature, Z_SEED, device=device)
    width, height = size if network_size is None else network_size
    image = Image.fromarray(np.ascontiguousarray(hr[:height, :width]), "RGB")
    return image if network_size is None else image.resize(size, RESAMPLING)


class Source:
    """An input image split the way every encode needs it: RGB, alpha plane, mode, and
    the metadata the file carries (none when ``keep_metadata`` is False)."""

    def __init__(self, image: ImageSource, keep_metadata: bool = True, frame: int | None = None) -> None:
        img = as_image(image, frame)
        _check_size(img)
        self.metadata = metadata.from_image(img) if keep_metadata else Metadata()
        self.rgb, alpha, self.mode = imageio.split_alpha(img)
        self.alpha = imageio.encode_alpha(alpha) if alpha is not None else b""
        self._resampled: tuple[tuple[int, int], Image.Image] | None = None

    @property
    def pixels(self) -> int:
        return self.rgb.width * self.rgb.height

    def network_input(self, size: tuple[int, int] | None) -> Image.Image:
        """The RGB image resampled to a network size (``network_size``; None: as it is). The
        last one is kept for the next call (rate control tries every codec at one scale in
        turn), and only that one: at scale 1.1 it has 3.3 times the image's pixels."""
        if size is None:
            return self.rgb
        if self._resampled is None or self._resampled[0] != size:
            self._resampled = (size, self.rgb.resize(size, RESAMPLING))
        return self._resampled[1]

    def downscale(self, net: IRN, scale: float | None = None, device: str | torch.device = "cpu"
                  ) -> tuple[Image.Image, tuple[int, int], tuple[int, int] | None]:
        """The network's 8-bit LR image of this image at ``scale`` (None: the network's own), the
        padding, and the network size the image was resampled to (None: not resampled): the last
        two are what :meth:`file` records."""
        size = network_size(self.rgb.size, scale or net.scale, net.scale)
        lr_image, pad_x, pad_y = downscale(net, self.network_input(size), device)
        return lr_image, (pad_x, pad_y), size

    def file(self, net: IRN, model_ref: str, lr_codec: LRCodec, quality: int, payload: bytes,
             padding: tuple[int, int], network_size: tuple[int, int] | None = None) -> IrnFile:
        """The ``.irn`` file of an LR payload ``lr_codec`` made from this image (resampled to
        ``network_size`` first, when given)."""
        header = Header(
            model=zoo.model_name_for(model_ref), scale=net.scale, width=self.rgb.width, height=self.rgb.height,
            mode=self.mode, pad_x=padding[0], pad_y=padding[1], codec=lr_codec.name, quality=quality,
            fingerprint=zoo.fingerprint(net), payload_version=lr_codec.format_version(payload),
            has_metadata=bool(self.metadata), network_size=network_size,
        )
        return IrnFile(header, payload, self.alpha, self.metadata)


def load_encoder(codec: str, quality: int | None, scale: float | None, model: str | None,
                 subsampling: str | None, device: str | torch.device = "cpu") -> tuple[IRN, str, LRCodec, int]:
    """The network, its name, the LR codec and the validated quality an encode uses; the
    network's scale is ``scale`` or, for a scale between the networks', the next one up."""
    scale = check_scale(scale)
    options = {"subsampling": subsampling} if subsampling is not None else {}
    lr_codec = get_codec(codec, **options)
    quality = lr_codec.validate_quality(lr_codec.default_quality if quality is None else quality)
    model_ref = _resolve_model(model, scale, lr_codec.name, quality)
    net = zoo.load_model(model_ref, device)
    if scale is not None and net.scale < scale:
        raise ModelError(f"model '{model_ref}' is x{net.scale}, too small for scale {scale:g} "
                         f"(a model of scale {scale:g} or more is needed)")
    return net, model_ref, type(lr_codec).for_model(net, model_ref, **options), quality


