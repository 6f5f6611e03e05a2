"""Measurement: one encode/decode (irncodec, a Pillow codec, bicubic rescaling) with its
size and times, its distortion scores, and every setting run on every image."""

from __future__ import annotations

import io
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from PIL import Image

from ..common import list_images
from .rows import make_row

if TYPE_CHECKING:
    from .settings import Setting


# --- one encode/decode ---------------------------------------------------------

@dataclass
class Coded:
    """An encoded file's size and its decoded image, with the time each step took."""

    nbytes: int
    image: Image.Image
    encode_s: float
    decode_s: float


def measure_irncodec(img: Image.Image, quality: int | None, codec: str, scale: float,
                     model: str | None = None, temperature: float | None = None,
                     device: str = "cpu") -> Coded:
    """Encode to ``.irn`` bytes and decode back; the rate counts the whole file."""
    import irncodec

    start = time.perf_counter()
    data = irncodec.encode(img, quality=quality, codec=codec, scale=scale, model=model, device=device)
    encoded = time.perf_counter()
    out = irncodec.decode(data, model=model, temperature=temperature, device=device)
    decoded = time.perf_counter()
    return Coded(len(data), out.convert("RGB"), encoded - start, decoded - encoded)


def measure_pillow(img: Image.Image, fmt: str, quality: int, **options: Any) -> Coded:
    """Encode with a Pillow plugin at ``quality`` and decode back."""
    buffer = io.BytesIO()
    start = time.perf_counter()
    img.save(buffer, fmt, quality=quality, **options)
    encoded = time.perf_counter()
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as opened:
        out = opened.convert("RGB")
    decoded = time.perf_counter()
    return Coded(len(data), out, encoded - start, decoded - encoded)


def lr_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """Size of irncodec's LR image at ``scale``: rounded up for a network's own scale (it pads),
    rounded for a resampled one (``irncodec.pipeline.network_size``)."""
    if float(scale).is_integer():
        whole = int(scale)
        return max(1, -(-size[0] // whole)), max(1, -(-size[1] // whole))
    return max(1, round(size[0] / scale)), max(1, round(size[1] / scale))


def measure_bicubic(img: Image.Image, scale: float, lr_codec: str, quality: int | None) -> Coded:
    """Bicubic downscale, store with irncodec's LR codec, bicubic upscale: irncodec minus the network."""
    return measure_resampled(img, scale, lr_codec, quality, Image.Resampling.BICUBIC)


def measure_resampled(img: Image.Image, scale: float, lr_codec: str, quality: int | None,
                      resampling: Image.Resampling = Image.Resampling.LANCZOS) -> Coded:
    """Downscale with a filter (Lanczos: the one irncodec resamples with), store with irncodec's LR
    codec, upscale with the same filter: irncodec at ``scale`` without the network."""
    from irncodec.lr_codecs import get_codec

    codec = get_codec(lr_codec)
    quality = codec.default_quality if quality is None else quality
    small = lr_size(img.size, scale)
    start = time.perf_counter()
    lr = img.resize(small, resampling, reducing_gap=None)
    payload = codec.encode(lr, quality)
    encoded = time.perf_counter()
    out = codec.decode(payload, small).convert("RGB").resize(img.size, resampling, reducing_gap=None)
    decoded = time.perf_counter()
    return Coded(len(payload), out, encoded - start, decoded - encoded)


# --- distortion ----------------------------------------------------------------

def score(ref: Any, out: Image.Image, border: int,
          dists: Callable[[Any, Any], float] | None = None) -> dict[str, float]:
    """All distortion metrics of a decoded 8-bit RGB image against the original tensor."""
    from irncodec import metrics
    from irncodec.tensors import image_to_tensor

    rec = image_to_tensor(out)
    border = min(border, (min(ref.shape[-2:]) - 1) // 2)
    result = {
        "psnr": metrics.psnr(ref, rec),
        "ssim": metrics.ssim(ref, rec),
        "ms_ssim": metrics.ms_ssim(ref, rec),
        "y_psnr": metrics.y_psnr(ref, rec, border),
    }
    if dists is not None:
        result["dists"] = dists(ref, rec)
    return result


def load_dists_or_note(device: str) -> Callable | None:
    """The DISTS metric, or None after printing once why it is left out."""
    from irncodec.metrics import DistsUnavailable, load_dists

    try:
        return load_dists(device)
    except DistsUnavailable as exc:
        click.echo(str(exc), err=True)
        return None


# --- images --------------------------------------------------------------------

def load_images(folder: Path, limit: int | None) -> list[tuple[str, Image.Image]]:
    """RGB images of a dataset folder in name order, the first ``limit`` of them."""
    images = []
    for path in list_images(folder, limit):
        with Image.open(path) as img:
            rgb = img.convert("RGB")
        rgb.info.clear()  # no ICC/EXIF/text carried into baseline files: only pixels count
        images.append((path.stem, rgb))
    return images


# --- the run -------------------------------------------------------------------

def warm_up(models: Iterable[str], device: str) -> None:
    """Load each model once so the first image's timings are not load times."""
    from irncodec import zoo

    for model in set(models):
        zoo.load_model(model, device)


def measure_all(images: Sequence[tuple[str, Image.Image]], settings: Sequence[Setting],
                dists: Callable | None) -> list[dict[str, Any]]:
    """Run every setting on every image; a progress bar counts images."""
    from tqdm import tqdm

    from irncodec.tensors import image_to_tensor

    rows = []
    for name, img in tqdm(images, desc="images", unit="img", file=sys.stderr):
        ref = image_to_tensor(img)
        for setting in settings:
            coded = setting.run(img)
            border = math.ceil(setting.scale)
            rows.append(make_row(setting, name, img, coded, score(ref, coded.image, border, dists)))
    return rows
