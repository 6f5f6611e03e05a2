"""What to run: ``--qf`` quality lists and the settings (method, scale, LR codec,
quality) of every curve: irncodec per scale and LR codec, the full-size Pillow
codecs, and bicubic rescaling with irncodec's LR payload."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from PIL import Image, features

from .measure import Coded, measure_bicubic, measure_irncodec, measure_pillow

#: Low qualities added to the Pillow baselines: irncodec stores 4x / 16x fewer
#: pixels, so its bpp at a given QF is far below a full-size codec's.
EXTRA_BASELINE_QUALITIES = (5, 10, 20)


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


# --- what to run ---------------------------------------------------------------

@dataclass
class Setting:
    """One point of one curve: a method at one quality, and how to run it."""

    method: str
    scale: float  #: how much smaller the LR image is (1 for full-size codecs)
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


def bicubic_settings(qualities: Sequence[int], scales: Sequence[float]) -> list[Setting]:
    """Bicubic rescaling with the same LR payload as irncodec: JPEG at each QF, and PNG."""
    settings = []
    for scale in scales:
        for q in qualities:
            run = partial(measure_bicubic, scale=scale, lr_codec="jpeg", quality=q)
            settings.append(Setting(f"bicubic-x{scale:g}-jpeg", scale, "jpeg", q, run))
        run = partial(measure_bicubic, scale=scale, lr_codec="png", quality=None)
        settings.append(Setting(f"bicubic-x{scale:g}-png", scale, "png", None, run))
    return settings


def level_points(codec: str, scale: float, override: bool) -> list[int]:
    """Levels of a codec whose levels are models (the entropy coder): every shipped
    level (those of the network ``scale`` uses), or the codec's default level for --model."""
    from irncodec import zoo
    from irncodec.lr_codecs import codec_class
    from irncodec.pipeline import network_scale_for

    return [codec_class(codec).default_quality] if override else zoo.levels(codec, network_scale_for(scale))


def measured_at(codec: str, scale: float, override: bool) -> bool:
    """Whether a codec's curve is measured at ``scale``: a codec whose levels are models of
    their own (entropy) only at the networks' own scales, as rate control tries it
    (``irncodec.ratecontrol.SEARCH_SCALES``), unless --model names the model."""
    from irncodec.lr_codecs import codec_class

    return override or not codec_class(codec).per_level_models or float(scale).is_integer()


def irncodec_models(models: dict[float, str], codecs: Sequence[str], override: bool) -> dict[str, list[str]]:
    """Models per irncodec series: the override, else what ``irncodec encode -c CODEC [-q]`` picks
    (for a codec whose levels are models, one model per level)."""
    from irncodec import zoo
    from irncodec.lr_codecs import codec_class
    from irncodec.pipeline import network_scale_for

    series = {}
    for scale, model in models.items():
        for codec in codecs:
            if not measured_at(codec, scale, override):
                continue
            if override:
                names = [model]
            elif codec_class(codec).per_level_models:
                names = [zoo.default_model(network_scale_for(scale), codec, q)
                         for q in level_points(codec, scale, override)]
            else:
                names = [zoo.default_model(network_scale_for(scale), codec)]
            series[f"irncodec-x{scale:g}-{codec}"] = names
    return series


def irncodec_settings(qualities: Sequence[int], models: dict[float, str], codecs: Sequence[str],
                      temperature: float | None, device: str, override: bool = False) -> list[Setting]:
    """irncodec curves per scale and LR codec, plus one lossless-LR (PNG) point per scale."""
    from irncodec.lr_codecs import codec_class

    settings = []
    for scale, model in models.items():
        for codec in codecs:
            if not measured_at(codec, scale, override):
                continue
            kind = codec_class(codec)
            points: Iterable[int | None] = [None] if kind.lossless else qualities
            if kind.per_level_models:  # its quality is a level, each level its own model
                points = level_points(codec, scale, override)
            for q in points:
                run = partial(measure_irncodec, quality=q, codec=codec, scale=scale,
                              model=model if override else None, temperature=temperature, device=device)
                settings.append(Setting(f"irncodec-x{scale:g}-{codec}", scale, codec, q, run))
    return settings


# --- LR codecs -----------------------------------------------------------------

def default_lr_codecs() -> list[str]:
    """The lossy LR codecs, those whose levels are models last and only when some level is shipped."""
    from irncodec import zoo
    from irncodec.lr_codecs import available_codecs, codec_class

    def shipped(name: str) -> bool:
        return not codec_class(name).per_level_models or any(zoo.levels(name, s) for s in zoo.DEFAULT_MODELS)

    lossy = [name for name in available_codecs() if not codec_class(name).lossless and shipped(name)]
    return sorted(lossy, key=lambda name: codec_class(name).per_level_models)
