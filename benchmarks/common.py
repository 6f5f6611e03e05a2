"""What the benchmarks share: the repository's paths, datasets, model choice, the --scale option."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
#: Where the benchmarks write their results unless told otherwise.
DEFAULT_OUT = REPO / "benchmarks" / "results"
#: The image datasets beside the repository (Kodak, Set14, training photos).
DATASETS = REPO / ".." / "shared" / "datasets"
DEFAULT_DATASET = DATASETS / "kodak"
IMAGE_SUFFIXES = {".png", ".bmp", ".tif", ".tiff", ".ppm", ".jpg", ".jpeg", ".webp"}


def psnr(a: Image.Image, b: Image.Image) -> float:
    """RGB PSNR in dB of two 8-bit images (inf when they are the same)."""
    mse = np.mean((np.asarray(a.convert("RGB"), np.float64) - np.asarray(b.convert("RGB"), np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


def list_images(folder: Path, limit: int | None = None) -> list[Path]:
    """Image files of a dataset folder in name order, the first ``limit`` of them."""
    if not folder.is_dir():
        hint = (f"; fetch Kodak there with `python benchmarks/get_kodak.py {folder}`"
                if folder.resolve() == DEFAULT_DATASET.resolve() else "")
        raise click.BadParameter(f"dataset folder not found: {folder}{hint}, or give another "
                                 "folder of images with --dataset", param_hint="--dataset")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not paths:
        raise click.BadParameter(f"no images in {folder}", param_hint="--dataset")
    return paths


def model_scale(model: str) -> int:
    """The scale of a zoo model or weights file."""
    from irncodec import zoo

    return zoo.model_scale(model)


def resolve_models(scales: Sequence[float], model: str | None) -> dict[float, str]:
    """Model per scale: the override, or the shipped default models that exist (for a
    scale between the networks', the next network's: irncodec resamples the image for it)."""
    from irncodec import zoo
    from irncodec.errors import ModelError
    from irncodec.pipeline import network_scale_for

    if model is not None:
        try:
            scale = model_scale(model)
        except ModelError as exc:
            raise click.BadParameter(str(exc), param_hint="--model") from None
        if scales and max(scales) > scale:
            raise click.BadParameter(f"model '{model}' is x{scale}, too small for --scale {max(scales):g}",
                                     param_hint="--scale")
        return {s: model for s in scales} if scales else {scale: model}
    shipped = zoo.available_models()
    wanted = scales or sorted(zoo.DEFAULT_MODELS)
    networks = {s: network_scale_for(s) for s in wanted}
    models = {s: zoo.DEFAULT_MODELS[n] for s, n in networks.items() if zoo.DEFAULT_MODELS[n] in shipped}
    missing = [s for s in wanted if s not in models]
    if (scales and missing) or not models:
        absent = missing or wanted
        names = ", ".join(zoo.DEFAULT_MODELS[networks[s]] for s in absent)
        raise click.UsageError(f"no shipped model for {', '.join(f'x{s:g}' for s in absent)} ({names}); "
                               "pass --model WEIGHTS.safetensors")
    return models


def scales_option(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[float]:
    """Scales from ``--scale 2 --scale 1.5,3``: numbers from 1.1 to 4 (whole ones as int)."""
    from irncodec.errors import CodecError
    from irncodec.pipeline import check_scale

    tokens = [t.strip() for v in value for t in v.split(",") if t.strip()]
    scales = set()
    for token in tokens:
        try:
            scales.add(check_scale(float(token)))
        except (ValueError, CodecError):
            raise click.BadParameter(f"'{token}': scales are numbers from 1.1 to 4 "
                                     "(repeat the option or give 1.5,2,4)") from None
    return sorted(scales)
