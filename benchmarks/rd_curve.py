#!/usr/bin/env python
"""Rate-distortion benchmark: irncodec against Pillow codecs and plain bicubic rescaling.

    python benchmarks/rd_curve.py --qf 30..90              # Kodak, x2 and x4, JPEG, WebP and entropy LR
    python benchmarks/rd_curve.py --qf 50,90 --limit 2 --model my-x2.safetensors

Rate is the real size of every encoded file (for irncodec the whole ``.irn``,
header included) in bits per HR pixel. Distortion is measured on 8-bit RGB per
image and then averaged over images, as CompressAI reports Kodak results.
Y-PSNR crops ``scale`` border pixels (1 for the full-size codecs); MS-SSIM
is NaN for images of 160 px or less a side and left out of that mean.
Every baseline runs in the same process on the same images.

``irncodec-envelope`` is the codec's best mean point at each rate over every
irncodec series measured (scales, LR codecs, qualities): what a user who picks
the best fixed setting for a size gets. ``bd_rate.md`` also compares it (and
each series) with the full-size codecs and bicubic+JPEG over ``--bd-range``
(default 0.1-0.5 bpp, where downscaling pays), not just over wherever two
curves happen to overlap. Outputs in ``--out``: ``rd_points.csv``,
``rd_summary.json``, ``rd_curve.png`` and ``bd_rate.md``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import click
from bench_common import DEFAULT_DATASET, list_images, resolve_models, scales_option
from PIL import Image, features

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results"
PUBLISHED = REPO / "benchmarks" / "published" / "kodak_compressai.json"

COLUMNS = ["method", "scale", "codec", "quality", "image", "bytes", "bpp", "psnr", "ssim",
           "ms_ssim", "dists", "y_psnr", "encode_s", "decode_s"]
METRICS = ["bytes", "bpp", "psnr", "ssim", "ms_ssim", "dists", "y_psnr", "encode_s", "decode_s"]
#: Low qualities added to the Pillow baselines: irncodec stores 4x / 16x fewer
#: pixels, so its bpp at a given QF is far below a full-size codec's.
EXTRA_BASELINE_QUALITIES = (5, 10, 20)
#: Curves every irncodec curve is compared with in ``bd_rate.md``.
BD_ANCHORS = ("jpeg-420", "webp")
BD_MIN_POINTS = 4
#: The envelope's name, and the anchors it is compared with over ``--bd-range``.
ENVELOPE = "irncodec-envelope"
RANGE_ANCHORS = ("jpeg-420", "webp", "avif", "bicubic-x2-jpeg", "bicubic-x4-jpeg")
DEFAULT_BD_RANGE = (0.1, 0.5)


# --- quality lists -------------------------------------------------------------

def _quality(token: str) -> int:
    if not token.strip():
        raise ValueError("a number is missing")
    try:
        value = int(token.strip())
    except ValueError:
        raise ValueError(f"'{token.strip()}' is not a whole number") from None
    if not 0 <= value <= 100:
        raise ValueError(f"quality {value} is outside 0..100")
    return value


def parse_qualities(text: str) -> list[int]:
    """Qualities from ``A..B`` (step 10), ``A..B:STEP``, ``30,50,90`` or ``75``; sorted, unique."""
    text = text.strip()
    if not text:
        raise ValueError("empty quality list")
    if ".." in text:
        span, _, step_text = text.partition(":")
        start_text, _, stop_text = span.partition("..")
        start, stop = _quality(start_text), _quality(stop_text)
        step = 10 if not step_text else int(step_text) if step_text.strip().isdigit() else -1
        if step <= 0:
            raise ValueError(f"step '{step_text}' must be a positive whole number")
        if start > stop:
            raise ValueError(f"range {start}..{stop} runs backwards")
        return list(range(start, stop + 1, step))
    return sorted({_quality(token) for token in text.split(",")})


def _qualities_option(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        return parse_qualities(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc} (use A..B, A..B:STEP, 30,50,90 or 75)") from None


# --- one encode/decode -------------------------------------------------------------

@dataclass
class Coded:
    """An encoded file's size and its decoded image, with the time each step took."""

    nbytes: int
    image: Image.Image
    encode_s: float
    decode_s: float


def bits_per_pixel(nbytes: int, width: int, height: int) -> float:
    """Rate in bits per pixel of the original (HR) image."""
    return nbytes * 8 / (width * height)


def measure_irncodec(img: Image.Image, quality: int | None, codec: str, scale: int,
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


def lr_size(size: tuple[int, int], scale: int) -> tuple[int, int]:
    """Size of the LR image for ``scale`` (rounded up, as irncodec pads)."""
    return max(1, -(-size[0] // scale)), max(1, -(-size[1] // scale))


def measure_bicubic(img: Image.Image, scale: int, lr_codec: str, quality: int | None) -> Coded:
    """Bicubic downscale, store with irncodec's LR codec, bicubic upscale: irncodec minus the network."""
    from irncodec.lr_codecs import get_codec

    codec = get_codec(lr_codec)
    quality = codec.default_quality if quality is None else quality
    small = lr_size(img.size, scale)
    start = time.perf_counter()
    lr = img.resize(small, Image.BICUBIC, reducing_gap=None)
    payload = codec.encode(lr, quality)
    encoded = time.perf_counter()
    out = codec.decode(payload, small).convert("RGB").resize(img.size, Image.BICUBIC, reducing_gap=None)
    decoded = time.perf_counter()
    return Coded(len(payload), out, encoded - start, decoded - encoded)


# --- distortion ------------------------------------------------------------------

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


# --- what to run -----------------------------------------------------------------

@dataclass
class Setting:
    """One point of one curve: a method at one quality, and how to run it."""

    method: str
    scale: int
    codec: str
    quality: int | None
    run: Callable[[Image.Image], Coded]


#: Pillow baselines: method -> (Pillow format, save options, feature it needs).
#: JPEG and WebP use the options irncodec's LR codecs use (optimised Huffman
#: tables; WebP method 6), so only the network and the image size differ.
PILLOW_BASELINES: dict[str, tuple[str, dict[str, Any], str | None]] = {
    "jpeg-420": ("JPEG", {"subsampling": "4:2:0", "optimize": True}, None),
    "jpeg-444": ("JPEG", {"subsampling": "4:4:4", "optimize": True}, None),
    "webp": ("WEBP", {"method": 6}, "webp"),
    "avif": ("AVIF", {}, "avif"),
}


def jxl_available() -> bool:
    """Whether the pillow-jxl plugin is installed (it registers the JXL format on import)."""
    try:
        import pillow_jxl  # noqa: F401
    except ImportError:
        return False
    return True


def baseline_qualities(qualities: Sequence[int]) -> list[int]:
    """The --qf list plus low qualities so baselines reach irncodec's low bpp."""
    return sorted(set(qualities) | set(EXTRA_BASELINE_QUALITIES))


def pillow_settings(qualities: Sequence[int], notes: list[str]) -> list[Setting]:
    """Full-size Pillow codecs over their quality range; missing plugins become notes."""
    settings = []
    formats = dict(PILLOW_BASELINES)
    if jxl_available():
        formats["jxl"] = ("JXL", {}, None)
    else:
        notes.append("JPEG XL skipped: pillow_jxl is not installed")
    for method, (fmt, options, feature) in formats.items():
        if feature is not None and not features.check(feature):
            notes.append(f"{method} skipped: this Pillow lacks {feature} support")
            continue
        codec = method.split("-")[0]
        for q in baseline_qualities(qualities):
            run = partial(measure_pillow, fmt=fmt, quality=q, **options)
            settings.append(Setting(method, 1, codec, q, run))
    return settings


def bicubic_settings(qualities: Sequence[int], scales: Sequence[int]) -> list[Setting]:
    """Bicubic rescaling with the same LR payload as irncodec: JPEG at each QF, and PNG."""
    settings = []
    for scale in scales:
        for q in qualities:
            run = partial(measure_bicubic, scale=scale, lr_codec="jpeg", quality=q)
            settings.append(Setting(f"bicubic-x{scale}-jpeg", scale, "jpeg", q, run))
        run = partial(measure_bicubic, scale=scale, lr_codec="png", quality=None)
        settings.append(Setting(f"bicubic-x{scale}-png", scale, "png", None, run))
    return settings


def level_points(codec: str, scale: int, override: bool) -> list[int]:
    """Levels of a codec whose levels are models (the entropy coder): every shipped
    level, or the codec's default level for --model."""
    from irncodec import zoo
    from irncodec.lr_codecs import codec_class

    return [codec_class(codec).default_quality] if override else zoo.levels(codec, scale)


def irncodec_models(models: dict[int, str], codecs: Sequence[str], override: bool) -> dict[str, list[str]]:
    """Models per irncodec series: the override, else what ``irncodec encode -c CODEC [-q]`` picks
    (for a codec whose levels are models, one model per level)."""
    from irncodec import zoo
    from irncodec.lr_codecs import codec_class

    series = {}
    for scale, model in models.items():
        for codec in codecs:
            if override:
                names = [model]
            elif codec_class(codec).per_level_models:
                names = [zoo.default_model(scale, codec, q) for q in level_points(codec, scale, override)]
            else:
                names = [zoo.default_model(scale, codec)]
            series[f"irncodec-x{scale}-{codec}"] = names
    return series


def irncodec_settings(qualities: Sequence[int], models: dict[int, str], codecs: Sequence[str],
                      temperature: float | None, device: str, override: bool = False) -> list[Setting]:
    """irncodec curves per scale and LR codec, plus one lossless-LR (PNG) point per scale."""
    from irncodec.lr_codecs import codec_class

    settings = []
    for scale, model in models.items():
        for codec in codecs:
            kind = codec_class(codec)
            points: Iterable[int | None] = [None] if kind.lossless else qualities
            if kind.per_level_models:  # its quality is a level, each level its own model
                points = level_points(codec, scale, override)
            for q in points:
                run = partial(measure_irncodec, quality=q, codec=codec, scale=scale,
                              model=model if override else None, temperature=temperature, device=device)
                settings.append(Setting(f"irncodec-x{scale}-{codec}", scale, codec, q, run))
    return settings


# --- models and codecs -----------------------------------------------------------

def default_lr_codecs() -> list[str]:
    """The lossy LR codecs, those whose levels are models last and only when some level is shipped."""
    from irncodec import zoo
    from irncodec.lr_codecs import available_codecs, codec_class

    def shipped(name: str) -> bool:
        return not codec_class(name).per_level_models or any(zoo.levels(name, s) for s in zoo.DEFAULT_MODELS)

    lossy = [name for name in available_codecs() if not codec_class(name).lossless and shipped(name)]
    return sorted(lossy, key=lambda name: codec_class(name).per_level_models)


def _codecs_option(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    from irncodec.lr_codecs import available_codecs

    names = [t.strip().lower() for v in value for t in v.split(",") if t.strip()] or default_lr_codecs()
    known = set(available_codecs())
    for name in names:
        if name not in known:
            raise click.BadParameter(f"unknown LR codec '{name}': choose from {', '.join(sorted(known))}")
    return list(dict.fromkeys(names))


def check_qualities(qualities: Sequence[int], codecs: Sequence[str]) -> None:
    """Refuse qualities an LR codec cannot store (e.g. JPEG 0) before any work is done."""
    from irncodec.errors import CodecError
    from irncodec.lr_codecs import codec_class, get_codec

    for name in codecs:
        if codec_class(name).per_level_models:
            continue  # its points are the shipped levels, not --qf
        codec = get_codec(name)
        try:
            for q in qualities:
                codec.validate_quality(q)
        except CodecError as exc:
            raise click.BadParameter(str(exc), param_hint="--qf") from None


def drop_codecs_model_lacks(codecs: list[str], model: str | None) -> list[str]:
    """With a --model that lacks a learned coder a codec needs (the entropy coder), that
    series cannot run: leave it out of the default codecs, or refuse it when asked for."""
    from irncodec import zoo
    from irncodec.errors import ModelError
    from irncodec.lr_codecs import codec_class

    if model is None:
        return codecs
    kept = []
    for name in codecs:
        try:
            if codec_class(name).needs_model:
                codec_class(name).for_model(zoo.load_model(model), model)
        except ModelError as exc:
            source = click.get_current_context().get_parameter_source("codecs")
            if source is not None and source.name != "DEFAULT":
                raise click.BadParameter(str(exc), param_hint="--codec") from None
            continue
        kept.append(name)
    return kept


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


# --- rows and means -----------------------------------------------------------

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


# --- BD-rate -----------------------------------------------------------------

def _points(curve: dict[str, Any], key: str) -> tuple[list[float], list[float]]:
    """(bpp, metric) of a curve's finite points."""
    pairs = [(p["bpp"], p[key]) for p in curve["points"]
             if key in p and math.isfinite(p["bpp"]) and math.isfinite(p[key]) and p["bpp"] > 0]
    return [r for r, _ in pairs], [d for _, d in pairs]


def _overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Length of the range both value sets span (0 when disjoint)."""
    return max(min(max(a), max(b)) - max(min(a), min(b)), 0.0)


def _coverage(anchor: Sequence[float], test: Sequence[float]) -> float:
    """Fraction of the test curve's span that the anchor also spans (BD only sees that part)."""
    span = max(test) - min(test)
    return _overlap(anchor, test) / span if span > 0 else 0.0


def _sorted_unique(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    """Points sorted by x with repeated x dropped (the interpolators need x strictly rising)."""
    seen: dict[float, float] = {}
    for x, y in sorted(zip(xs, ys)):
        seen.setdefault(x, y)
    return list(seen), list(seen.values())


def bd_pair(anchor: dict[str, Any], test: dict[str, Any], key: str = "psnr") -> dict[str, Any]:
    """BD-rate (%) and BD-metric of ``test`` against ``anchor`` (Akima), with notes on why not or how far.

    ``rate_note`` concerns the BD-rate, ``metric_note`` the BD-metric; ``note`` joins them.
    """
    import bjontegaard as bd

    ra, da = _points(anchor, key)
    rt, dt = _points(test, key)
    result: dict[str, Any] = {"bd_rate": None, "bd_metric": None}
    skip = ""
    if min(len(ra), len(rt)) < BD_MIN_POINTS:
        skip = f"skipped: fewer than {BD_MIN_POINTS} points"
    elif _overlap(ra, rt) == 0:
        skip = "skipped: no bpp overlap"
    if skip:
        return {**result, "rate_note": skip, "metric_note": skip, "note": skip}
    label = {"psnr": "PSNR", "ms_ssim": "MS-SSIM"}.get(key, key)
    rate_note = metric_note = ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if _overlap(da, dt) > 0:
            xa, ya = _sorted_unique(da, ra)
            xt, yt = _sorted_unique(dt, rt)
            result["bd_rate"] = float(bd.bd_rate(ya, xa, yt, xt, method="akima",
                                                 require_matching_points=False, min_overlap=0))
            if _coverage(da, dt) < 0.75:
                rate_note = f"BD-rate over only {_coverage(da, dt):.0%} of the test's {label} range"
        else:
            rate_note = f"no {label} overlap: BD-rate undefined"
        xa, ya = _sorted_unique(ra, da)
        xt, yt = _sorted_unique(rt, dt)
        result["bd_metric"] = float(bd.bd_psnr(xa, ya, xt, yt, method="akima",
                                               require_matching_points=False, min_overlap=0))
    if _coverage(ra, rt) < 0.75:
        metric_note = f"BD-{label} over only {_coverage(ra, rt):.0%} of the test's bpp range"
    note = "; ".join(n for n in (rate_note, metric_note) if n)
    return {**result, "rate_note": rate_note, "metric_note": metric_note, "note": note}


def bd_table(summary: dict[str, dict[str, Any]], anchors: Sequence[str] = BD_ANCHORS,
             key: str = "psnr") -> list[dict[str, Any]]:
    """BD rows of every rescaling curve (irncodec, and bicubic+JPEG for reference) per anchor."""
    from irncodec.lr_codecs import available_codecs, codec_class

    tests = [m for m in summary if m.startswith(("irncodec-", "bicubic-")) and not m.endswith("-png")]
    rows = []
    for test in tests:
        extra: list[str] = []
        prefix, codec = test.rsplit("-", 1)
        if test.startswith("irncodec-") and codec in available_codecs() and codec_class(codec).per_level_models:
            # also against irncodec's own image-codec paths at that scale
            extra = [f"{prefix}-{other}" for other in default_lr_codecs()
                     if not codec_class(other).per_level_models and f"{prefix}-{other}" in summary]
        for anchor in list(anchors) + extra:
            if anchor not in summary:
                skip = "skipped: anchor not measured"
                rows.append({"test": test, "anchor": anchor, "bd_rate": None, "bd_metric": None,
                             "rate_note": skip, "metric_note": skip, "note": skip})
                continue
            rows.append({"test": test, "anchor": anchor, **bd_pair(summary[anchor], summary[test], key)})
    return rows


def envelope(summary: dict[str, dict[str, Any]], prefix: str = "irncodec-") -> dict[str, Any] | None:
    """The best mean point at each rate over every ``prefix`` series (upper-left Pareto frontier of PSNR).

    Each point keeps its ``series`` and ``quality``, so the table shows which path wins where.
    """
    points = [{**p, "series": name} for name, curve in summary.items()
              if name.startswith(prefix) and name != ENVELOPE for p in curve["points"]
              if math.isfinite(p.get("bpp", math.nan)) and math.isfinite(p.get("psnr", math.nan))]
    frontier: list[dict[str, Any]] = []
    for point in sorted(points, key=lambda p: (p["bpp"], -p["psnr"])):
        if not frontier or point["psnr"] > frontier[-1]["psnr"]:
            frontier.append(point)
    return {"scale": None, "codec": None, "points": frontier} if frontier else None


def with_envelope(summary: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``summary`` plus the envelope, when it has more than one irncodec series and lacks one."""
    best = envelope(summary)
    if ENVELOPE in summary or best is None or sum(m.startswith("irncodec-") for m in summary) < 2:
        return summary
    return {**summary, ENVELOPE: best}


def _interpolator(xs: Sequence[float], ys: Sequence[float]) -> Callable[[float], float]:
    """Monotone piecewise-cubic (PCHIP) through the points; x must be strictly rising."""
    from scipy.interpolate import PchipInterpolator

    f = PchipInterpolator(xs, ys, extrapolate=False)
    return lambda x: float(f(x))


def _mean_gap(f: Callable[[float], float], g: Callable[[float], float], lo: float, hi: float,
              steps: int = 200) -> float:
    """Mean of f - g over [lo, hi] (trapezoid rule on a fine grid)."""
    xs = [lo + (hi - lo) * i / steps for i in range(steps + 1)]
    gaps = [f(x) - g(x) for x in xs]
    return (sum(gaps) - (gaps[0] + gaps[-1]) / 2) / steps


def _window(rates: list[float], values: list[float], lo: float, hi: float) -> tuple[list[float], list[float]]:
    """The points within lo..hi bpp plus the nearest one outside on each side (to interpolate to the edges)."""
    first = max([i for i, r in enumerate(rates) if r <= lo], default=0)
    last = min([i for i, r in enumerate(rates) if r >= hi], default=len(rates) - 1)
    return rates[first:last + 1], values[first:last + 1]


def bd_in_range(anchor: dict[str, Any], test: dict[str, Any], lo: float, hi: float,
                key: str = "psnr") -> dict[str, Any]:
    """BD-PSNR and BD-rate of ``test`` against ``anchor`` restricted to ``lo``..``hi`` bpp.

    BD-PSNR: mean metric gap over log-rate in the part of [lo, hi] both curves
    span. BD-rate: mean log-rate gap over the metric range the anchor covers in
    that window (clipped to the test's range), as a percentage. Only points in
    the window (and one beyond each edge) count, so a curve that flattens far
    outside it changes nothing. PCHIP interpolation, so a curve is never
    extrapolated; ``span`` says what part of the window was compared.
    """
    ra, da = _window(*_sorted_unique(*_points(anchor, key)), lo, hi)
    rt, dt = _window(*_sorted_unique(*_points(test, key)), lo, hi)
    result: dict[str, Any] = {"bd_rate": None, "bd_metric": None, "span": None, "note": ""}
    lo_r, hi_r = max(lo, ra[0] if ra else hi, rt[0] if rt else hi), min(hi, ra[-1] if ra else lo,
                                                                         rt[-1] if rt else lo)
    if min(len(ra), len(rt)) < 2 or hi_r <= lo_r:
        return {**result, "note": f"no points of both curves within {lo:g}-{hi:g} bpp"}
    result["span"] = (lo_r, hi_r)
    anchor_at = _interpolator([math.log(r) for r in ra], da)
    test_at = _interpolator([math.log(r) for r in rt], dt)
    result["bd_metric"] = _mean_gap(test_at, anchor_at, math.log(lo_r), math.log(hi_r))
    # BD-rate over the anchor's metric range in the window, where both curves reach.
    d_lo, d_hi = anchor_at(math.log(lo_r)), anchor_at(math.log(hi_r))
    if all(a < b for a, b in itertools.pairwise(da)) and all(a < b for a, b in itertools.pairwise(dt)):
        d_lo, d_hi = max(d_lo, dt[0]), min(d_hi, dt[-1])
        if d_hi > d_lo:
            log_rate_anchor = _interpolator(da, [math.log(r) for r in ra])
            log_rate_test = _interpolator(dt, [math.log(r) for r in rt])
            result["bd_rate"] = 100 * (math.exp(_mean_gap(log_rate_test, log_rate_anchor, d_lo, d_hi)) - 1)
        else:
            result["note"] = "no common quality range: BD-rate undefined"
    else:
        result["note"] = "quality not rising with rate: BD-rate undefined"
    return result


def range_table(summary: dict[str, dict[str, Any]], lo: float, hi: float,
                anchors: Sequence[str] = RANGE_ANCHORS) -> list[dict[str, Any]]:
    """BD rows over lo..hi bpp: the envelope and each rescaling series against each measured anchor."""
    tests = [m for m in summary if m.startswith(("irncodec-", "bicubic-")) and not m.endswith("-png")]
    tests.sort(key=lambda m: (m != ENVELOPE, m))
    return [{"test": test, "anchor": anchor, **bd_in_range(summary[anchor], summary[test], lo, hi)}
            for test in tests for anchor in anchors if anchor in summary and anchor != test]


def range_markdown(rows: Sequence[dict[str, Any]], envelope_curve: dict[str, Any] | None,
                   lo: float, hi: float) -> str:
    """The --bd-range tables: BD against each anchor, then the envelope's points."""
    lines = [f"## Over {lo:g}-{hi:g} bpp (PCHIP, window clipped to where both curves have points)\n",
             "| test | anchor | BD-rate PSNR (%) | BD-PSNR (dB) | compared over (bpp) | note |",
             "| --- | --- | ---: | ---: | --- | --- |"]
    for r in rows:
        span = "—" if r["span"] is None else f"{r['span'][0]:.3f}-{r['span'][1]:.3f}"
        lines.append(f"| {r['test']} | {r['anchor']} | {_fmt(r['bd_rate'], '+.1f')} | "
                     f"{_fmt(r['bd_metric'], '+.2f')} | {span} | {r['note']} |")
    if envelope_curve:
        lines += ["", f"### {ENVELOPE}: the best series at each rate", "",
                  "| bpp | PSNR | series | quality |", "| ---: | ---: | --- | ---: |"]
        for p in envelope_curve["points"]:
            quality = "" if p.get("quality") is None else str(p["quality"])
            lines.append(f"| {p['bpp']:.3f} | {p['psnr']:.2f} | {p['series']} | {quality} |")
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None or not math.isfinite(value) else format(value, spec)


def bd_markdown(psnr_rows: Sequence[dict[str, Any]], msssim_rows: Sequence[dict[str, Any]]) -> str:
    """The BD table as markdown: negative BD-rate / positive BD-PSNR mean the test curve is better."""
    lines = [
        "| test | anchor | BD-rate PSNR (%) | BD-PSNR (dB) | BD-rate MS-SSIM (%) | note |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for p, m in zip(psnr_rows, msssim_rows):
        notes = [n for n in (p["rate_note"], p["metric_note"]) if n]
        notes += [f"MS-SSIM: {m['rate_note']}"] if m["rate_note"] and m["rate_note"] not in notes else []
        note = "; ".join(dict.fromkeys(notes))
        lines.append(f"| {p['test']} | {p['anchor']} | {_fmt(p['bd_rate'], '+.1f')} | "
                     f"{_fmt(p['bd_metric'], '+.2f')} | {_fmt(m['bd_rate'], '+.1f')} | {note} |")
    return "\n".join(lines) + "\n"


# --- outputs -----------------------------------------------------------------

def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})


def _json_safe(value: Any) -> Any:
    """NaN/inf become null so the JSON is standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def load_published(path: Path = PUBLISHED) -> dict[str, dict[str, Any]]:
    """Published reference series, or none when the file is absent."""
    if not path.is_file():
        return {}
    with open(path) as f:
        return json.load(f).get("series", {})


def _style(method: str) -> dict[str, Any]:
    if method.startswith("irncodec-"):
        return {"linestyle": "-", "marker": "o", "linewidth": 2}
    if method.startswith("bicubic-"):
        return {"linestyle": ":", "marker": "x"}
    return {"linestyle": "--", "marker": "s", "markersize": 3}


#: Markers that tell the published series apart while they all stay grey.
PUBLISHED_MARKERS = ("v", "^", "D", "P", "*", "h")


def plot_curves(summary: dict[str, dict[str, Any]], path: Path, keys: Sequence[str],
                published: dict[str, dict[str, Any]], title: str = "") -> None:
    """bpp-vs-metric panels, one per key; published series in grey, labelled as such.

    The x axis spans the measured points only, so long published curves do
    not squeeze the range where irncodec lives.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"psnr": "PSNR (dB, RGB)", "ms_ssim": "MS-SSIM (RGB)", "dists": "DISTS (lower is better)"}
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys) + 2.5, 5.5), squeeze=False)
    max_bpp = max((p["bpp"] for c in summary.values() for p in c["points"]), default=1.0)
    for ax, key in zip(axes[0], keys):
        for method, curve in summary.items():
            rates, values = _points(curve, key)
            if rates:
                ax.plot(rates, values, label=method, **_style(method))
        for (name, series), marker in zip(published.items(), PUBLISHED_MARKERS * 4):
            if key in series:
                ax.plot(series["bpp"], series[key], color="grey", alpha=0.7, linestyle="-.",
                        marker=marker, markersize=4, label=f"{name} (published)")
        ax.set_xlim(0, max_bpp * 1.05)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(labels[key])
        ax.grid(True, alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="center right", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 2.3 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary_markdown(means: Sequence[dict[str, Any]], with_dists: bool) -> str:
    """Mean points as a markdown table, one row per method and quality."""
    names = ["method", "q", "bpp", "PSNR", "SSIM", "MS-SSIM"] + (["DISTS"] if with_dists else []) \
        + ["Y-PSNR", "enc s", "dec s"]
    lines = ["| " + " | ".join(names) + " |", "|" + " --- |" * len(names)]
    for r in sorted(means, key=lambda r: (r["method"], r["bpp"])):
        cells = [r["method"], "" if r["quality"] is None else str(r["quality"]), _fmt(r["bpp"], ".3f"),
                 _fmt(r["psnr"], ".2f"), _fmt(r["ssim"], ".4f"), _fmt(r["ms_ssim"], ".4f")]
        if with_dists:
            cells.append(_fmt(r.get("dists"), ".4f"))
        cells += [_fmt(r["y_psnr"], ".2f"), _fmt(r["encode_s"], ".3f"), _fmt(r["decode_s"], ".3f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --- the run -----------------------------------------------------------------

def load_dists_or_note(device: str) -> Callable | None:
    """The DISTS metric, or None after printing once why it is left out."""
    from irncodec.metrics import DistsUnavailable, load_dists

    try:
        return load_dists(device)
    except DistsUnavailable as exc:
        click.echo(str(exc), err=True)
        return None


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
            border = setting.scale
            rows.append(make_row(setting, name, img, coded, score(ref, coded.image, border, dists)))
    return rows


def warm_up(models: Iterable[str], device: str) -> None:
    """Load each model once so the first image's timings are not load times."""
    from irncodec import zoo

    for model in set(models):
        zoo.load_model(model, device)


def write_outputs(out: Path, rows: list[dict[str, Any]], means: list[dict[str, Any]],
                  meta: dict[str, Any], with_dists: bool, dataset: Path,
                  bd_range: tuple[float, float] = DEFAULT_BD_RANGE) -> str:
    """All four output files; returns the BD markdown."""
    out.mkdir(parents=True, exist_ok=True)
    columns = [c for c in COLUMNS if with_dists or c != "dists"]
    write_csv(out / "rd_points.csv", rows + means, columns)
    summary = with_envelope(summarize(means))
    with open(out / "rd_summary.json", "w") as f:
        json.dump(_json_safe({"meta": meta, "methods": summary}), f, indent=2)
        f.write("\n")
    keys = ["psnr", "ms_ssim"] + (["dists"] if with_dists else [])
    published = load_published() if dataset.resolve().name == "kodak" else {}
    title = f"{meta['dataset_name']}, {len(meta['images'])} images, mean per image" + (
        "; published series: all 24 Kodak images (CompressAI results)" if published else "")
    plot_curves(summary, out / "rd_curve.png", keys, published, title)
    header, bd_md = bd_report(summary, meta, bd_range)
    (out / "bd_rate.md").write_text(header + bd_md)
    return bd_md


def bd_report(summary: dict[str, dict[str, Any]], meta: dict[str, Any],
              bd_range: tuple[float, float] = DEFAULT_BD_RANGE) -> tuple[str, str]:
    """(header, tables) of ``bd_rate.md`` for measured curves: whole-overlap BD, then the windowed one."""
    summary = with_envelope(summary)
    if any(anchor in summary for anchor in BD_ANCHORS):
        bd_md = bd_markdown(bd_table(summary, key="psnr"), bd_table(summary, key="ms_ssim"))
    else:
        bd_md = f"No BD-rate: its anchors ({', '.join(BD_ANCHORS)}) were not measured (--no-baselines).\n"
    if any(anchor in summary for anchor in RANGE_ANCHORS):
        bd_md += "\n" + range_markdown(range_table(summary, *bd_range), summary.get(ENVELOPE), *bd_range)
    header = (f"# BD-rate of rescaling curves ({meta['dataset_name']}, {len(meta['images'])} images)\n\n"
              "Akima interpolation (bjontegaard) over wherever two curves overlap; negative BD-rate = "
              "fewer bits for the same quality.\n\n")
    return header, bd_md


def _bd_range_option(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter("give two numbers, LO,HI (bits per pixel)") from None
    if not 0 < lo < hi:
        raise click.BadParameter(f"need 0 < LO < HI, got {lo:g},{hi:g}")
    return lo, hi


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--qf", "qualities", default="30..90", show_default=True, callback=_qualities_option,
              help="LR qualities: A..B (step 10), A..B:STEP, 30,50,90 or 75.")
@click.option("--dataset", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_DATASET,
              show_default="../shared/datasets/kodak", help="Folder of test images.")
@click.option("--scale", "scales", multiple=True, callback=scales_option,
              help="2, 4 or 2,4 (repeatable); default: every scale with a shipped model.")
@click.option("--codec", "codecs", multiple=True, callback=_codecs_option,
              help="irncodec LR codec, e.g. jpeg, webp, png, entropy (repeatable); default: every lossy "
                   "codec, a learned one (entropy) when shipped, at its shipped levels whatever --qf says.")
@click.option("--model", default=None, help="Zoo name or .safetensors path instead of the shipped model.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_OUT,
              show_default="benchmarks/results", help="Output folder.")
@click.option("--device", default="cpu", show_default=True, help="torch device for irncodec and DISTS.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N images.")
@click.option("--temperature", type=float, default=0.0, show_default=True,
              help="Spread of z at decode relative to the prior (0 = its mean, irncodec's default).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch.set_num_threads (default: torch's choice).")
@click.option("--no-baselines", is_flag=True, help="Measure irncodec only.")
@click.option("--bd-range", default=f"{DEFAULT_BD_RANGE[0]},{DEFAULT_BD_RANGE[1]}", show_default=True,
              callback=_bd_range_option, help="LO,HI bpp window of the windowed BD table.")
def main(qualities: list[int], dataset: Path, scales: list[int], codecs: list[str], model: str | None,
         out: Path, device: str, limit: int | None, temperature: float | None, threads: int | None,
         no_baselines: bool, bd_range: tuple[float, float]) -> None:
    """Measure rate-distortion curves of irncodec and baselines on a dataset."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    models = resolve_models(scales, model)
    codecs = drop_codecs_model_lacks(codecs, model)
    check_qualities(qualities, codecs)
    images = load_images(dataset, limit)
    notes: list[str] = []
    all_codecs = codecs + ["png"] * ("png" not in codecs)
    settings = irncodec_settings(qualities, models, all_codecs, temperature, device, override=model is not None)
    series_models = irncodec_models(models, all_codecs, override=model is not None)
    if not no_baselines:
        settings += pillow_settings(qualities, notes) + bicubic_settings(qualities, sorted(models))
    for note in notes:
        click.echo(note, err=True)
    dists = load_dists_or_note(device)
    warm_up([m for names in series_models.values() for m in names], device)

    rows = measure_all(images, settings, dists)
    means = mean_rows(rows)
    meta = {"dataset": str(dataset), "dataset_name": dataset.resolve().name,
            "images": [name for name, _ in images], "models": series_models,
            "device": device, "temperature": temperature, "qualities": qualities,
            "dists": dists is not None, "notes": notes}
    meta["bd_range"] = list(bd_range)
    bd_md = write_outputs(out, rows, means, meta, dists is not None, dataset, bd_range)
    click.echo(summary_markdown(means, dists is not None))
    click.echo(bd_md)
    click.echo(f"wrote {out}/rd_points.csv, rd_summary.json, rd_curve.png, bd_rate.md")


if __name__ == "__main__":
    main()
