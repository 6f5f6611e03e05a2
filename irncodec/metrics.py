"""Image quality metrics, following CompressAI's Kodak protocol (RGB, 8-bit)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
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


# --- DISTS, from a converted local weights file only --------------------------

#: VGG16's convolutional part (torchvision's ``cfgs["D"]``) up to relu5_3, the
#: deepest layer DISTS compares: output channels of each 3x3 convolution, "M"
#: where VGG16 max-pools (DISTS replaces those with L2 pooling).
VGG16_LAYOUT: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                                       512, 512, 512, "M", 512, 512, 512)
#: Channels of the input and of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3:
#: how the 1475 alpha and beta weights split by layer.
DISTS_CHANNELS = (3, 64, 128, 256, 512, 512)
#: ImageNet statistics VGG16 was trained with (its input normalisation).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Where ``benchmarks/get_dists_weights.py`` writes the converted weights: this
#: folder when set, else ``$XDG_CACHE_HOME/irncodec`` (``~/.cache/irncodec``).
CACHE_ENV = "IRNCODEC_CACHE"
DISTS_WEIGHTS_NAME = "dists.safetensors"
_GET_WEIGHTS = "python benchmarks/get_dists_weights.py"


class DistsUnavailable(Exception):
    """DISTS cannot be computed because its converted weights file is missing or invalid."""


def cache_dir() -> Path:
    """irncodec's per-user cache folder: ``$IRNCODEC_CACHE``, else ``$XDG_CACHE_HOME/irncodec``."""
    folder = os.environ.get(CACHE_ENV, "").strip()
    if folder:
        return Path(folder).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "irncodec"


def dists_weights_path() -> Path:
    """Where :func:`load_dists` looks for the weights by default."""
    return cache_dir() / DISTS_WEIGHTS_NAME


def vgg16_conv_shapes() -> list[tuple[int, int, int, int]]:
    """OIHW weight shapes of VGG16's 13 convolutions up to relu5_3."""
    shapes, channels = [], 3
    for v in VGG16_LAYOUT:
        if isinstance(v, int):
            shapes.append((v, channels, 3, 3))
            channels = v
    return shapes


def dists_state_shapes() -> dict[str, tuple[int, ...]]:
    """Every tensor of the weights file with its shape: ``conv{i}.weight`` (OIHW),
    ``conv{i}.bias``, and the flat per-channel ``alpha`` (structure) and ``beta`` (texture)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i, shape in enumerate(vgg16_conv_shapes()):
        shapes[f"conv{i}.weight"] = shape
        shapes[f"conv{i}.bias"] = (shape[0],)
    shapes["alpha"] = shapes["beta"] = (sum(DISTS_CHANNELS),)
    return shapes


def check_dists_state(state: dict[str, Tensor]) -> None:
    """Raise ValueError unless ``state`` holds exactly the DISTS tensors, finite, fp32,
    with non-negative alpha/beta."""
    expected = dists_state_shapes()
    if set(state) != set(expected):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise ValueError(f"tensor names differ (missing {missing}, unexpected {extra})")
    for name, shape in expected.items():
        value = state[name]
        if tuple(value.shape) != shape or value.dtype != torch.float32:
            raise ValueError(f"{name}: {value.dtype} {list(value.shape)}, expected float32 {list(shape)}")
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} holds non-finite values")
    if (state["alpha"] < 0).any() or (state["beta"] < 0).any():
        raise ValueError("alpha/beta hold negative weights")


class L2Pool(torch.nn.Module):
    """DISTS's replacement for max pooling: sqrt of a 3x3 Hann-weighted mean of x²,
    stride 2 (the window is ``hanning(5)[1:-1]``, normalised to sum 1)."""

    window: Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([0.5, 1.0, 0.5])
        window = torch.outer(taps, taps)
        self.register_buffer("window", (window / window.sum()).expand(channels, 1, 3, 3).contiguous())

    def forward(self, x: Tensor) -> Tensor:
        pooled = F.conv2d(x * x, self.window, stride=2, padding=1, groups=x.shape[1])
        return (pooled + 1e-12).sqrt()


class Dists(torch.nn.Module):
    """DISTS (Ding et al. 2020, "Image Quality Assessment: Unifying Structure and
    Texture Similarity"): 1 minus a weighted sum, over the input and five VGG16
    stages, of per-channel structure (global-mean) and texture (global variance /
    covariance) similarities. Inputs are RGB in [0, 1], compared at the size given
    (no resizing); returns one distance per batch item, 0 for identical images."""

    alpha: Tensor
    beta: Tensor
    mean: Tensor
    std: Tensor

    def __init__(self, state: dict[str, Tensor]) -> None:
        super().__init__()
        check_dists_state(state)
        stages: list[torch.nn.Sequential] = [torch.nn.Sequential()]
        conv, channels = 0, 3
        for v in VGG16_LAYOUT:
            if v == "M":
                stages.append(torch.nn.Sequential(L2Pool(channels)))
                continue
            assert isinstance(v, int)
            layer = torch.nn.Conv2d(channels, v, 3, padding=1)
            layer.load_state_dict({"weight": state[f"conv{conv}.weight"], "bias": state[f"conv{conv}.bias"]})
            stages[-1].extend([layer, torch.nn.ReLU()])
            conv, channels = conv + 1, v
        self.stages = torch.nn.ModuleList(stages)
        total = state["alpha"].sum() + state["beta"].sum()
        self.register_buffer("alpha", (state["alpha"] / total).view(1, -1, 1, 1))
        self.register_buffer("beta", (state["beta"] / total).view(1, -1, 1, 1))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.to(memory_format=torch.channels_last)  # ~1.6x faster convolutions on CPU

    def features(self, x: Tensor) -> list[Tensor]:
        """The input itself (unnormalised) and relu1_2 .. relu5_3."""
        out, h = [x], ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        for stage in self.stages:
            h = stage(h)
            out.append(h)
        return out

    def distance(self, fx: Sequence[Tensor], fy: Sequence[Tensor]) -> Tensor:
        """DISTS between two images' :meth:`features`."""
        c1 = c2 = 1e-6
        similarity = torch.zeros(fx[0].shape[0], device=fx[0].device)
        alphas = torch.split(self.alpha, list(DISTS_CHANNELS), dim=1)
        betas = torch.split(self.beta, list(DISTS_CHANNELS), dim=1)
        for x, y, alpha, beta in zip(fx, fy, alphas, betas):
            x_mean, y_mean = x.mean([2, 3], keepdim=True), y.mean([2, 3], keepdim=True)
            structure = (2 * x_mean * y_mean + c1) / (x_mean**2 + y_mean**2 + c1)
            x_var = ((x - x_mean) ** 2).mean([2, 3], keepdim=True)
            y_var = ((y - y_mean) ** 2).mean([2, 3], keepdim=True)
            covariance = (x * y).mean([2, 3], keepdim=True) - x_mean * y_mean
            texture = (2 * covariance + c2) / (x_var + y_var + c2)
            similarity = similarity + (alpha * structure + beta * texture).sum([1, 2, 3])
        return 1 - similarity

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.distance(self.features(x), self.features(y))


def load_dists_state(path: Path) -> dict[str, Tensor]:
    """The converted DISTS tensors of a safetensors file, checked; DistsUnavailable otherwise."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise DistsUnavailable(f"DISTS weights not found at {path}: run `{_GET_WEIGHTS}` "
                               "to fetch and convert them; so the DISTS column is left out")
    try:
        state = load_file(path)
        check_dists_state(state)
    except (OSError, SafetensorError, ValueError) as exc:
        raise DistsUnavailable(f"DISTS weights file {path} is not valid ({exc}): run `{_GET_WEIGHTS}` "
                               "again; so the DISTS column is left out") from None
    return state


def load_dists(device: str | torch.device = "cpu", path: Path | None = None) -> Callable[[Tensor, Tensor], float]:
    """A DISTS function ``dists(reference, distorted)`` (lower is better) built only
    from the local weights file (default :func:`dists_weights_path`).

    Nothing is downloaded: the file is written once by
    ``benchmarks/get_dists_weights.py``; without it this raises
    :class:`DistsUnavailable`. Images are compared at full size. The features of
    the last reference are kept, so scoring many decodes of one image against
    it runs VGG16 once per decode.
    """
    metric = Dists(load_dists_state(path or dists_weights_path())).to(device).eval()
    last: list[tuple[Tensor, list[Tensor]]] = []

    def reference_features(a: Tensor) -> list[Tensor]:
        if last and last[0][0].shape == a.shape and torch.equal(last[0][0], a):
            return last[0][1]
        features = metric.features(a)
        last[:] = [(a.clone(), features)]
        return features

    def dists(a: Tensor, b: Tensor) -> float:
        with torch.inference_mode():
            a, b = a.float().to(device), b.float().to(device)
            return float(metric.distance(reference_features(a), metric.features(b)).mean().item())

    return dists
