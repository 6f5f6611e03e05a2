"""The loss terms of a training step, and how they are weighted.

Losses follow IRN (Xiao et al. 2020), summed per image and averaged over the
batch as in the reference code:

* guide: L2 between the LR image and a bicubic (antialiased) downscale, so the
  stored LR image is a faithful thumbnail;
* distr: sum of z^2, pushing z towards N(0, I) so the decoder can sample it;
* recon: L1 between the input and its reconstruction from the 8-bit quantised
  LR image (straight-through rounding), passed through the configured LR
  channel (lossless, or a JPEG/WebP: see :mod:`irncodec.channels`), and a
  fresh z from the model's prior at ``recon_temperature`` (0: its mean);
* sim (SAIN models only): L2 between the network's simulated compressed LR
  and what the channel really delivered, so the inverse path starts from a
  faithful model of the codec;
* rate (``lambda_rate`` > 0): the LR image's bits, per image. With an LR
  entropy coder, the bits its likelihoods give; the coder sits in the channel
  (recon is measured through it), and ``lambda_rate`` sets the rate level,
  as CompressAI's lambda does. Its auxiliary loss (the CDF quantiles) has its
  own optimizer, as in CompressAI's training examples. Through a JPEG
  channel, the calibrated estimate of the JPEG file's size
  (:func:`irncodec.jpeg_proxy.jpeg_bits`) at the quality drawn for the image,
  so the downscaler learns LR images that cost fewer bits;
* thumb (entropy-coder models only): the guide loss again, on the *decoded*
  LR image (weighted by ``lambda_guide``). Without it the coder's synthesis
  drifts into features that only the inverse network can read (measured:
  20 dB from the encoder's LR image after 900 iterations), and the thumbnail
  a user sees with ``decode --lr-only`` is no longer one.

Each term has its weight in the config (:data:`WEIGHTS`); :func:`loss_terms`
says which terms a run has, and the training log's columns follow from it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..channels import Channel
from ..errors import ConfigError
from ..metrics import quantize_8bit
from ..models import IRN
from .config import PRECISIONS

if TYPE_CHECKING:
    from .config import TrainConfig

#: The config field that weighs each term (the decoded thumbnail shares the guide's).
WEIGHTS = {"guide": "lambda_guide", "distr": "lambda_distr", "recon": "lambda_recon", "sim": "lambda_sim",
           "rate": "lambda_rate", "thumb": "lambda_guide"}


def loss_terms(config: TrainConfig) -> list[str]:
    """The terms :func:`irn_losses` returns for a run of ``config``, in its order."""
    terms = ["guide", "distr", "recon"]
    if config.model.architecture == "sain":
        terms.append("sim")
    if config.model.lr_coder != "none":
        terms += ["rate", "thumb"]
    elif config.lambda_rate > 0:
        terms.append("rate")
    return terms


def weighted_total(losses: dict[str, Tensor], config: TrainConfig) -> Tensor:
    """The loss a step minimises: each term times its weight (:data:`WEIGHTS`), in order."""
    terms = iter(losses.items())
    name, value = next(terms)
    total = getattr(config, WEIGHTS[name]) * value
    for name, value in terms:
        total = total + getattr(config, WEIGHTS[name]) * value
    return total


def quantize_ste(x: Tensor) -> Tensor:
    """8-bit rounding in the forward pass, identity gradient in the backward."""
    return x + (quantize_8bit(x) - x).detach()


def bicubic_downscale(x: Tensor, scale: int) -> Tensor:
    return F.interpolate(x, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False)


def network_autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context the rescaling network's passes run under."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def irn_losses(model: IRN, hr: Tensor,
               lr_channel: Channel | None = None,
               precision: str = "fp32", recon_temperature: float = 1.0) -> dict[str, Tensor]:
    """The loss terms for one batch, each per image.

    ``lr_channel`` models what happens to the 8-bit LR image before the decoder
    sees it (e.g. a differentiable JPEG, SAIN-style); None means stored losslessly.
    ``precision`` "bf16" runs the network's two passes under autocast; what
    they return is cast back to fp32, so the channel, coder and losses never
    see bf16. ``recon_temperature`` scales the spread of the z the
    reconstruction is decoded with (see ``TrainConfig.recon_temperature``).
    """
    n = hr.shape[0]
    with network_autocast(hr.device, precision):
        lr, simulated, z = (t.float() for t in model.rescale(hr))
    received = quantize_ste(lr)
    extra = {}
    if lr_channel is not None:
        received, bits = lr_channel(received)
        if bits is not None:
            extra["rate"] = bits.sum() / n
    bicubic = bicubic_downscale(hr, model.scale)
    if model.lr_coder is not None:
        decoded, likelihoods = model.lr_coder(received)
        received = quantize_ste(decoded.clamp(0, 1))
        extra["rate"] = torch.stack([-torch.log2(v).sum() for v in likelihoods.values()]).sum() / n
        extra["thumb"] = ((received - bicubic) ** 2).sum() / n
    with network_autocast(hr.device, precision):
        upscaled = model.upscale(received, recon_temperature).float()
    losses = {
        "guide": ((lr - bicubic) ** 2).sum() / n,
        "distr": model.prior.nll(z),
        "recon": (upscaled - hr).abs().sum() / n,
    }
    if model.config.architecture == "sain":
        losses["sim"] = ((simulated - received.detach()) ** 2).sum() / n
    return {**losses, **extra}


class LossModule(nn.Module):
    """Model + LR channel -> losses, as one module so DistributedDataParallel can wrap it."""

    def __init__(self, model: IRN, lr_channel: Channel | None,
                 precision: str = "fp32", recon_temperature: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.lr_channel = lr_channel
        self.precision = precision
        self.recon_temperature = recon_temperature

    def forward(self, hr: Tensor) -> dict[str, Tensor]:
        return irn_losses(self.model, hr, self.lr_channel, self.precision, self.recon_temperature)
