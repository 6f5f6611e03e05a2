"""Rescaling by overlapping tiles, so memory does not grow with the photo.

The network is convolutional: an LR pixel depends on a bounded neighbourhood
of the HR image (and back). So the image is cut into LR tiles of ``tile``
pixels a side; each is processed together with ``margin`` pixels of context
on every side, and only its centre is kept. With enough margin the seams are
invisible (see ``benchmarks/large_images.py`` for the measured difference from
whole-image processing). Apart from the uint8 image buffers (input, LR, output)
the memory needed is that of one tile, whatever the image size.

An image whose LR fits in one tile is processed whole, exactly as without
tiling. Results depend on ``tile`` and ``margin``, so the codec uses fixed
values: the same file always decodes to the same pixels.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from . import progress
from .models import IRN
from .tensors import pixels_to_tensor, tensor_to_pixels

#: LR pixels per tile side, and of context around each tile.
TILE = 256
MARGIN = 24


def tiles(height: int, width: int, tile: int) -> Iterator[tuple[int, int, int, int]]:
    """(top, left, height, width) of the tiles covering an LR image, row by row."""
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            yield top, left, min(tile, height - top), min(tile, width - left)


def _window(top: int, left: int, h: int, w: int, height: int, width: int, margin: int) -> tuple[int, int, int, int]:
    """The tile grown by ``margin`` on each side, clipped to the image: (top, left, bottom, right)."""
    return max(0, top - margin), max(0, left - margin), min(height, top + h + margin), min(width, left + w + margin)


def downscale_tiled(model: IRN, pixels: np.ndarray, tile: int | None = None, margin: int | None = None,
                    device: torch.device | str = "cpu") -> np.ndarray:
    """The 8-bit LR image (h x w x 3) of an HR uint8 image whose sides divide by the scale
    (``tile`` and ``margin`` default to the module's TILE and MARGIN)."""
    tile, margin = tile or TILE, MARGIN if margin is None else margin
    s = model.scale
    height, width = pixels.shape[0] // s, pixels.shape[1] // s
    out = np.empty((height, width, 3), np.uint8)
    windows = list(tiles(height, width, tile))
    with torch.inference_mode():
        for index, (top, left, h, w) in enumerate(windows):
            t0, l0, b0, r0 = _window(top, left, h, w, height, width, margin)
            lr, _ = model(pixels_to_tensor(pixels[t0 * s: b0 * s, l0 * s: r0 * s], device))
            keep = lr[..., top - t0: top - t0 + h, left - l0: left - l0 + w]
            out[top: top + h, left: left + w] = tensor_to_pixels(keep)
            progress.advance("downscale", index + 1, len(windows))
    return out


def upscale_tiled(model: IRN, lr_pixels: np.ndarray, temperature: float | None, seed: int,
                  tile: int | None = None, margin: int | None = None,
                  device: torch.device | str = "cpu") -> np.ndarray:
    """The 8-bit HR image (H x W x 3) the network reconstructs from an LR uint8 image.

    z is drawn per tile window from a generator seeded with ``seed`` + the tile's
    index, so decoding is deterministic and needs no image-sized z.
    """
    tile, margin = tile or TILE, MARGIN if margin is None else margin
    s = model.scale
    height, width = lr_pixels.shape[:2]
    out = np.empty((height * s, width * s, 3), np.uint8)
    windows = list(tiles(height, width, tile))
    with torch.inference_mode():
        for index, (top, left, h, w) in enumerate(windows):
            t0, l0, b0, r0 = _window(top, left, h, w, height, width, margin)
            lr = pixels_to_tensor(lr_pixels[t0:b0, l0:r0], device)
            generator = torch.Generator(device=device).manual_seed(seed + index)
            hr = model.upscale(lr, temperature, generator)
            keep = hr[..., (top - t0) * s: (top - t0 + h) * s, (left - l0) * s: (left - l0 + w) * s]
            out[top * s: (top + h) * s, left * s: (left + w) * s] = tensor_to_pixels(keep)
            progress.advance("upscale", index + 1, len(windows))
    return out
