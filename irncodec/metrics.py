"""Image quality metrics, following CompressAI's Kodak protocol (RGB, 8-bit)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor


def quantize_8bit(x: Tensor) -> Tensor:
    """Round a [0,1] image to the 256 levels an 8-bit file can hold."""
    return torch.round(x.clamp(0, 1) * 255) / 255


def psnr(a: Tensor, b: Tensor, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels."""
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    if mse == 0:
        return math.inf
    return 10 * math.log10(data_range**2 / mse)


# --- structural similarity ---------------------------------------------------

#: MS-SSIM downsamples four times with an 11-pixel window, so pytorch_msssim
#: needs the short side to exceed (11 - 1) * 2**4 = 160 pixels.
MS_SSIM_MIN_SIDE = 161


def ssim(a: Tensor, b: Tensor) -> float:
    """SSIM (Gaussian 11x11 window, data range 1) averaged over channels."""
    from pytorch_msssim import ssim as _ssim

    return float(_ssim(a.float(), b.float(), data_range=1.0).item())


def ms_ssim(a: Tensor, b: Tensor) -> float:
    """MS-SSIM (5 scales, data range 1); NaN for images with a side of 160 px or less.

    The metric is undefined there (the coarsest scale would be smaller than
    the window), and NaN keeps such images out of means instead of failing.
    """
    if min(a.shape[-2:]) < MS_SSIM_MIN_SIDE:
        return math.nan
    from pytorch_msssim import ms_ssim as _ms_ssim

    return float(_ms_ssim(a.float(), b.float(), data_range=1.0).item())


# --- Y-channel PSNR (super-resolution convention) ---------------------------

def rgb_to_y(x: Tensor) -> Tensor:
    """BT.601 luma in 8-bit units with studio range (16..235), as IRN/SAIN evaluate."""
    weights = x.new_tensor([65.481, 128.553, 24.966], dtype=torch.float64).view(1, 3, 1, 1)
    return (x.double() * weights).sum(dim=1, keepdim=True) + 16.0


def y_psnr(a: Tensor, b: Tensor, border: int) -> float:
    """PSNR of the Y channel after cropping ``border`` pixels on each side.

    Rescaling papers crop a border of ``scale`` pixels because the edges of an
    upscaled image are unreliable; this keeps numbers comparable with them.
    """
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    height, width = a.shape[-2:]
    if 2 * border >= min(height, width):
        raise ValueError(f"border {border} leaves nothing of a {width}x{height} image")
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    if border:
        ya = ya[..., border:-border, border:-border]
        yb = yb[..., border:-border, border:-border]
    return psnr(ya, yb, data_range=255.0)


# --- DISTS, from locally cached weights only ---------------------------------

#: VGG16 layers whose features DISTS compares (piq's choice, after the paper).
DISTS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
#: Channels of the input and of each of those layers: how alpha/beta split.
DISTS_CHANNELS = (3, 64, 128, 256, 512, 512)


class DistsUnavailable(Exception):
    """DISTS cannot be computed because its pretrained weights are not cached."""


def dists_weight_files(hub_dir: str | None = None) -> tuple[Path, Path]:
    """Where torch hub keeps torchvision's VGG16 and piq's DISTS weights.

    The names are those ``torch.hub.load_state_dict_from_url`` gives the files
    piq would download, so a cache filled by piq itself is found.
    """
    from urllib.parse import urlparse

    import piq
    from torchvision.models import VGG16_Weights

    folder = Path(hub_dir or torch.hub.get_dir()) / "checkpoints"
    vgg_name = Path(urlparse(VGG16_Weights.IMAGENET1K_V1.url).path).name
    dists_name = Path(urlparse(piq.DISTS._weights_url).path).name
    return folder / vgg_name, folder / dists_name


def _load_state(path: Path) -> dict[str, Tensor]:
    """A cached state dict, read without unpickling arbitrary objects."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file: treat as not available
        raise DistsUnavailable(f"DISTS weights file {path} cannot be read ({exc}); "
                               "so the DISTS column is left out") from None
    if not isinstance(state, dict):
        raise DistsUnavailable(f"DISTS weights file {path} holds no state dict; so the DISTS column is left out")
    return state


def _vgg16_features(vgg_path: Path) -> torch.nn.Module:
    """VGG16's convolutional part, built untrained and filled from the cache."""
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["D"], batch_norm=False)
    state = _load_state(vgg_path)
    prefix = "features."
    wanted = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    try:
        features.load_state_dict(wanted)
    except RuntimeError as exc:
        raise DistsUnavailable(f"{vgg_path} does not hold VGG16 weights ({exc}); "
                               "so the DISTS column is left out") from None
    return features


def _dists_layer_weights(dists_path: Path) -> list[Tensor]:
    """piq's per-channel alpha (structure) and beta (texture) weights, split by layer."""
    state = _load_state(dists_path)
    total = sum(DISTS_CHANNELS)
    for key in ("alpha", "beta"):
        value = state.get(key)
        if not isinstance(value, Tensor) or value.dim() != 4 or value.shape[1] != total:
            raise DistsUnavailable(f"{dists_path} lacks a [1,{total},1,1] '{key}' tensor; "
                                   "so the DISTS column is left out")
    weights = list(torch.split(state["alpha"].float(), list(DISTS_CHANNELS), dim=1))
    weights.extend(torch.split(state["beta"].float(), list(DISTS_CHANNELS), dim=1))
    return weights


def load_dists(device: str | torch.device = "cpu") -> Callable[[Tensor, Tensor], float]:
    """A DISTS function (lower is better) built only from locally cached weights.

    piq's own constructor downloads VGG16 and its DISTS weights; here the
    network is built untrained and both state dicts are read from the torch hub
    cache (``torch.hub.get_dir()/checkpoints``), so nothing can reach the
    network and DISTS is never computed with untrained weights. Raises
    :class:`DistsUnavailable` when a file is missing or unreadable.
    """
    import piq
    from piq.perceptual import IMAGENET_MEAN, IMAGENET_STD, VGG16_LAYERS, ContentLoss

    vgg_path, dists_path = dists_weight_files()
    missing = [p for p in (vgg_path, dists_path) if not p.is_file()]
    if missing:
        raise DistsUnavailable(
            f"DISTS needs pretrained VGG16 and DISTS weights in {vgg_path.parent}; "
            "not found, so the DISTS column is left out")
    features = _vgg16_features(vgg_path)
    layer_weights = _dists_layer_weights(dists_path)

    metric = piq.DISTS.__new__(piq.DISTS)  # skip piq's downloading __init__
    ContentLoss.__init__(
        metric, feature_extractor=features, layers=[VGG16_LAYERS[name] for name in DISTS_LAYERS],
        weights=layer_weights, replace_pooling=True, reduction="mean",
        mean=IMAGENET_MEAN, std=IMAGENET_STD, normalize_features=False,
        allow_layers_weights_mismatch=True,
    )
    metric = metric.to(device).eval()

    def dists(a: Tensor, b: Tensor) -> float:
        with torch.inference_mode():
            return float(metric(a.float().to(device), b.float().to(device)).item())

    return dists
