"""Pixels to and from the network's tensors, and the one padding rule.

Every conversion rounds the same way (clamp, scale by 255, round half to
even), so an 8-bit image survives a round trip exactly, and every pad to a
multiple of the scale follows one rule (reflect, or repeat the edge where the
image is too small to reflect), on tensors and on uint8 arrays alike.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import ImageError


def image_to_tensor(img: Image.Image) -> torch.Tensor:
    """An RGB image as a float32 [1, 3, H, W] tensor in [0, 1], the network's input."""
    if img.mode != "RGB":
        raise ImageError(f"expected an RGB image, got mode '{img.mode}' (use split_alpha first)")
    return pixels_to_tensor(np.asarray(img, dtype=np.uint8))


def pixels_to_tensor(pixels: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """A uint8 H x W x 3 array as a float32 [1, 3, H, W] tensor in [0, 1] (always a copy)."""
    return torch.tensor(pixels, device=device).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def tensor_to_pixels(t: torch.Tensor) -> np.ndarray:
    """A [1, 3, H, W] or [3, H, W] tensor in [0, 1] as a uint8 H x W x 3 array.

    Values are clamped, scaled by 255 and rounded half to even, so the round
    trip with :func:`pixels_to_tensor` is exact for 8-bit images; NaN becomes 0.
    """
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"expected a [1, 3, H, W] or [3, H, W] tensor, got shape {list(t.shape)}")
    t = t.detach().to("cpu", torch.float32).nan_to_num(0.0)
    pixels = t.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return pixels.permute(1, 2, 0).contiguous().numpy()


def tensor_to_image(t: torch.Tensor) -> Image.Image:
    """A [1, 3, H, W] or [3, H, W] tensor in [0, 1] as an 8-bit RGB image (see
    :func:`tensor_to_pixels`), so ``tensor_to_image(image_to_tensor(img))`` is exact."""
    return Image.fromarray(tensor_to_pixels(t), "RGB")


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Pad [N, C, H, W] on the right and bottom so H and W divide by ``multiple``.

    The network downscales by ``multiple``, so sizes must divide by it.
    Reflection avoids hard edges at the border; images smaller than the
    padding (e.g. 1x1) cannot reflect, so they repeat the edge pixels instead.
    Returns (padded, pad_x, pad_y); :func:`crop` undoes it.
    """
    height, width = x.shape[-2:]
    pad_x, pad_y, reflect = _padding(width, height, multiple)
    if pad_x == 0 and pad_y == 0:
        return x, 0, 0
    return F.pad(x, (0, pad_x, 0, pad_y), mode="reflect" if reflect else "replicate"), pad_x, pad_y


def pad_pixels_to_multiple(pixels: np.ndarray, multiple: int) -> tuple[np.ndarray, int, int]:
    """:func:`pad_to_multiple` for a uint8 H x W x C array (same reflect/replicate rule)."""
    height, width = pixels.shape[:2]
    pad_x, pad_y, reflect = _padding(width, height, multiple)
    if pad_x == 0 and pad_y == 0:
        return pixels, 0, 0
    return np.pad(pixels, ((0, pad_y), (0, pad_x), (0, 0)), mode="reflect" if reflect else "edge"), pad_x, pad_y


def padding_to_multiple(width: int, height: int, multiple: int) -> tuple[int, int]:
    """The right and bottom padding :func:`pad_to_multiple` adds to a ``width`` x ``height`` image."""
    pad_x, pad_y, _ = _padding(width, height, multiple)
    return pad_x, pad_y


def _padding(width: int, height: int, multiple: int) -> tuple[int, int, bool]:
    """Right and bottom padding to a multiple, and whether reflection is possible."""
    if multiple < 1:
        raise ValueError(f"multiple must be at least 1, got {multiple}")
    pad_x, pad_y = -width % multiple, -height % multiple
    return pad_x, pad_y, pad_x < width and pad_y < height


def crop(x: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The top-left ``width`` x ``height`` of [..., H, W], undoing :func:`pad_to_multiple`."""
    if width > x.shape[-1] or height > x.shape[-2]:
        raise ValueError(f"cannot crop {width}x{height} from a {x.shape[-1]}x{x.shape[-2]} tensor")
    return x[..., :height, :width]
