"""Measuring a model: PSNR of its reconstructions, through a real LR codec when asked."""

from __future__ import annotations

import os

import torch
from torch import Tensor

from ..data import find_images, load_rgb_uint8
from ..errors import CodecError, ConfigError, ModelError
from ..lr_codecs import codec_class
from ..metrics import psnr, quantize_8bit
from ..models import IRN
from ..tensors import image_to_tensor, tensor_to_image
from .losses import bicubic_downscale


def load_eval_images(folder: str | os.PathLike, limit: int | None = None,
                     crop: int | None = None, multiple: int = 1) -> list[Tensor]:
    """[1,3,H,W] images from a folder, top-left cropped to ``crop`` and to a multiple of the scale."""
    images = []
    for path in find_images(folder)[:limit]:
        img = load_rgb_uint8(path).float()[None] / 255
        h, w = (min(s, crop or s) // multiple * multiple for s in img.shape[2:])
        images.append(img[:, :, :h, :w])
    return images


def evaluate(model: IRN, images: list[Tensor], temperature: float | None = None,
             lr_codec: str | None = None, quality: int | None = None) -> dict[str, float]:
    """Mean RGB PSNR of HR reconstructions from the 8-bit LR (z drawn with a fixed seed),
    and of the LR image against a bicubic downscale.

    The LR is kept lossless, or goes through a real ``lr_codec`` at ``quality``
    (its default when None; ``bpp`` is added: the LR file's bits per HR pixel).
    A learned coder is the model's own, set up for a model in training
    (:meth:`~irncodec.lr_codecs.LRCodec.for_training`).
    """
    was_training = model.training
    model.eval()
    hr_psnr, lr_psnr, bits, pixels = [], [], 0, 0
    generator = torch.Generator(device=images[0].device if images else "cpu").manual_seed(0)
    codec = None
    if lr_codec is not None:
        try:
            codec = codec_class(lr_codec).for_training(model)
        except (CodecError, ModelError) as exc:
            raise ConfigError(f"validation through {lr_codec}: {exc}") from None
        quality = codec.validate_quality(codec.default_quality if quality is None else quality)
    with torch.no_grad():
        for hr in images:
            lr = quantize_8bit(model(hr)[0])
            received = lr
            if codec is not None:
                data, decoded = codec.encode_with_reconstruction(tensor_to_image(lr[0]), int(quality or 0))
                received = image_to_tensor(decoded).to(lr.device, lr.dtype)
                bits, pixels = bits + 8 * len(data), pixels + hr.shape[2] * hr.shape[3]
            rec = quantize_8bit(model.upscale(received, temperature, generator))
            hr_psnr.append(psnr(rec, hr))
            lr_psnr.append(psnr(lr, bicubic_downscale(hr, model.scale).clamp(0, 1)))
    model.train(was_training)
    out = {"psnr": sum(hr_psnr) / len(hr_psnr), "lr_psnr": sum(lr_psnr) / len(lr_psnr)}
    if lr_codec is not None:
        out["bpp"] = bits / pixels
    return out
