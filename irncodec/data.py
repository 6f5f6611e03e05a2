"""Training data: random HR crops from a folder of photos (PNG and JPEG)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from .imageio import load_image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def find_images(folder: str | os.PathLike) -> list[Path]:
    """All image files below ``folder``, sorted so that runs are reproducible."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images (png/jpg/...) found in {root}")
    return files


def load_rgb_uint8(path: Path) -> Tensor:
    """An image file as a uint8 tensor [3,H,W], read as the codec reads its inputs
    (the first frame of a file of several: training takes any image it is given)."""
    return _uint8_tensor(load_image(path, frame=0).convert("RGB"))


def _uint8_tensor(img) -> Tensor:
    """An RGB PIL image as a uint8 tensor [3,H,W]."""
    data = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    return data.view(img.height, img.width, 3).permute(2, 0, 1).contiguous()


class RandomCrops:
    """Endless batches of random crops with flips and 90-degree rotations.

    All images are decoded once and kept in memory as uint8: the training set
    here is a few hundred photos, and decoding dominates otherwise. Sampling
    uses its own ``torch.Generator`` so that a checkpoint can restore it and a
    resumed run sees exactly the batches an uninterrupted run would.
    """

    def __init__(self, folders: Sequence[str | os.PathLike], patch_size: int, seed: int = 0,
                 enlarge_range: Sequence[float] | None = None) -> None:
        paths = [p for folder in folders for p in find_images(folder)]
        self.images = [img for img in map(load_rgb_uint8, paths) if min(img.shape[1:]) >= patch_size]
        if not self.images:
            raise ValueError(f"no training image is at least {patch_size}x{patch_size}")
        if enlarge_range is not None and not (len(enlarge_range) == 2 and 1 <= enlarge_range[0] <= enlarge_range[1]):
            raise ValueError(f"enlarge_range must be [low, high] with 1 <= low <= high, got {enlarge_range!r}")
        self.patch_size = patch_size
        #: Crops of a region 1/factor the patch size, enlarged to it (the codec's resampled
        #: scales); None: plain crops. Drawn from the same generator, so resuming stays exact.
        self.enlarge_range = None if enlarge_range is None else (float(enlarge_range[0]), float(enlarge_range[1]))
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.generator))

    def crop(self) -> Tensor:
        img = self.images[self._randint(len(self.images))]
        p = side = self.patch_size
        if self.enlarge_range is not None:
            low, high = self.enlarge_range
            factor = low + (high - low) * float(torch.rand((), generator=self.generator))
            side = max(1, round(p / factor))
        top = self._randint(img.shape[1] - side + 1)
        left = self._randint(img.shape[2] - side + 1)
        patch = img[:, top : top + side, left : left + side]
        if side != p:
            patch = _resample(patch, p)
        if self._randint(2):
            patch = patch.flip(2)
        return torch.rot90(patch, self._randint(4), (1, 2))

    def batch(self, size: int) -> Tensor:
        """A float batch [size,3,p,p] in [0,1]."""
        return torch.stack([self.crop() for _ in range(size)]).float() / 255


def _resample(patch: Tensor, size: int) -> Tensor:
    """A uint8 [3,h,w] patch resampled to size x size the way the codec resamples images."""
    from PIL import Image

    from .pipeline import RESAMPLING

    image = Image.fromarray(patch.permute(1, 2, 0).contiguous().numpy(), "RGB")
    return _uint8_tensor(image.resize((size, size), RESAMPLING))
