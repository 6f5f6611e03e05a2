"""Results as data: a row per setting and image (``rd_points.csv``), the per-setting
means over images, and the curves those means make (``rd_summary.json``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from .measure import Coded
    from .settings import Setting

COLUMNS = ["method", "scale", "codec", "quality", "image", "bytes", "bpp", "psnr", "ssim",
           "ms_ssim", "dists", "y_psnr", "encode_s", "decode_s"]
METRICS = ["bytes", "bpp", "psnr", "ssim", "ms_ssim", "dists", "y_psnr", "encode_s", "decode_s"]


def bits_per_pixel(nbytes: int, width: int, height: int) -> float:
    """Rate in bits per pixel of the original (HR) image."""
    return nbytes * 8 / (width * height)


def make_row(setting: Setting, name: str, img: Image.Image, coded: Coded,
             metrics: dict[str, float]) -> dict[str, Any]:
    """One CSV row: a setting applied to one image."""
    return {
        "method": setting.method, "scale": setting.scale, "codec": setting.codec,
        "quality": setting.quality, "image": name, "bytes": coded.nbytes,
        "bpp": bits_per_pixel(coded.nbytes, *img.size), **metrics,
        "encode_s": coded.encode_s, "decode_s": coded.decode_s,
    }


def _mean(values: Sequence[float]) -> float:
    """Mean over the values that are not NaN (MS-SSIM is NaN for small images); NaN if none are."""
    kept = [v for v in values if not math.isnan(v)]
    return math.fsum(kept) / len(kept) if kept else math.nan


def mean_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-setting means over images (image = 'mean'): bpp and each metric averaged per image."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["scale"], row["codec"], row["quality"]), []).append(row)
    means = []
    for (method, scale, codec, quality), members in groups.items():
        mean = {"method": method, "scale": scale, "codec": codec, "quality": quality, "image": "mean"}
        for key in METRICS:
            if key in members[0]:
                mean[key] = _mean([float(m[key]) for m in members])
        means.append(mean)
    return means


def summarize(means: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean points grouped into curves, each sorted by bpp."""
    curves: dict[str, dict[str, Any]] = {}
    for row in means:
        curve = curves.setdefault(row["method"], {"scale": row["scale"], "codec": row["codec"], "points": []})
        curve["points"].append({k: v for k, v in row.items() if k not in ("method", "scale", "codec", "image")})
    for curve in curves.values():
        curve["points"].sort(key=lambda p: p["bpp"])
    return curves


def curve_points(curve: dict[str, Any], key: str) -> tuple[list[float], list[float]]:
    """(bpp, metric) of a curve's finite points."""
    pairs = [(p["bpp"], p[key]) for p in curve["points"]
             if key in p and math.isfinite(p["bpp"]) and math.isfinite(p[key]) and p["bpp"] > 0]
    return [r for r, _ in pairs], [d for _, d in pairs]
