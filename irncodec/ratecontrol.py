"""Rate control: the best file at or under a size, found by real encodes.

Users ask for a size ("at most 0.3 bits per pixel"), not a quality number, and
codecs are compared at equal size. Every *path* the codec has is tried: each
scale of ``SEARCH_SCALES`` with each lossy LR codec (its default model for that codec), and
each rate level of a codec whose levels are models of their own (the learned
entropy coder). For a Pillow codec the network's LR image is made once and its
quality is bisected (file size grows with quality) to the largest whose whole
file fits; per-level models are bisected over their levels the same way, and
then, where the codec takes a ``step`` (a multiplier of a level's quantisation
steps), the budget is filled from both sides: the largest fitting level with
finer steps, and the next level up (or the smallest, when no level fits) with
coarser ones. Each fitting file is then decoded exactly as
:func:`irncodec.decode` would, and the one closest to the original (RGB PSNR)
is kept. Sizes are those of the packed ``.irn`` file, header and alpha included.

The networks' passes are what costs (kodim23 at 0.4 bpp: 147 of 169 s on one
thread for all 14 paths), so the image codecs' paths are first ranked without
them: each is tried with Lanczos in the network's place (the same LR size, codec,
header and budget, bisected the same way), and only the best :data:`SHORTLIST`
go through the network, with the per-level codecs at those paths' network
scales. ``shortlist=None`` tries every path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from . import container, zoo
from .errors import CodecError
from .lr_codecs import LRCodec, available_codecs, codec_class, codecs_with_option, get_codec
from .pipeline import RESAMPLING, Source, check_scale, load_encoder, lr_layout, network_scale_for, upscale

#: The scales rate control tries when none is given: the networks' own and, between
#: them, resampled ones (a small factor wins at high rates, a large one at low rates).
#: Codecs whose levels are models of their own (the entropy coder) are tried at the
#: networks' own scales only: resampled, they measured below the image codecs'
#: resampled paths (kodim23 at 0.4 bpp: 33.3 dB at scale 1.5 against WebP's 35.1 at
#: 1.25) and they double the search's time.
SEARCH_SCALES: tuple[float, ...] = (1.1, 1.25, 1.5, 2, 3, 4)
#: How many image-codec paths, ranked with Lanczos in the network's place, are
#: run through the network (see the module docstring).
SHORTLIST = 3


@dataclass(frozen=True)
class Candidate:
    """One path's best file that fits: how it was made, its size and quality."""

    codec: str
    scale: float  #: the LR image is 1/scale of the image (the network's own scale, or resampled)
    model: str
    quality: int
    size: int  #: bytes of the whole .irn file
    bpp: float
    psnr: float  #: RGB PSNR (dB) of the decoded image against the input
    step: float = 1.0  #: multiplier of the level's quantisation steps (codecs with ``step_range``)


@dataclass
class RateControlled:
    """The chosen file and every path's candidate (for reports and ``-v``)."""

    data: bytes
    choice: Candidate
    candidates: list[Candidate] = field(default_factory=list)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def largest_fitting(low: int, high: int, size_of: Callable[[int], int], budget: int) -> int | None:
    """The largest quality in [low, high] whose size fits ``budget`` (sizes grow with quality), or None."""
    if size_of(low) > budget:
        return None
    while low < high:
        mid = (low + high + 1) // 2
        if size_of(mid) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


def encode_to_target(image, target_bpp: float, codec: str | None = None, scale: float | None = None,
                     subsampling: str | None = None, device: str | torch.device = "cpu",
                     extra_bytes: int = 0, keep_metadata: bool = True,
                     frame: int | None = None, shortlist: int | None = SHORTLIST) -> RateControlled:
    """The ``.irn`` file of best RGB PSNR with at most ``target_bpp`` bits per pixel.

    ``codec`` and ``scale`` restrict the search to those; ``subsampling``
    applies to JPEG; ``extra_bytes`` is kept free for what the file will grow
    by afterwards (a viewable wrapper, :mod:`irncodec.viewable`). The metadata
    kept (``keep_metadata``, ``frame``: as for :func:`irncodec.encode`) counts
    towards the size. ``shortlist`` is how many image-codec paths go through the
    network after the ranking without it (None: every path; see the module
    docstring). Raises CodecError when no file fits the target.
    """
    if shortlist is not None and (isinstance(shortlist, bool) or not isinstance(shortlist, int) or shortlist < 1):
        raise CodecError(f"shortlist must be a positive whole number or None, got {shortlist!r}")
    try:
        target = float(target_bpp)
    except (TypeError, ValueError):
        raise CodecError(f"target bits per pixel must be a number, got {target_bpp!r}") from None
    if not np.isfinite(target) or target <= 0:
        raise CodecError(f"target bits per pixel must be positive and finite, got {target_bpp!r}")
    scale = check_scale(scale)
    source = Source(image, keep_metadata, frame)
    budget = int(target * source.pixels // 8) - extra_bytes
    scales = [scale] if scale is not None else list(SEARCH_SCALES)
    if codec is not None:
        codecs = [get_codec(codec).name]
    else:
        codecs = [name for name in available_codecs() if not codec_class(name).lossless]
    takes_subsampling = codecs_with_option("subsampling")
    if subsampling is not None and not set(codecs) & set(takes_subsampling):
        raise CodecError(f"subsampling applies to the {', '.join(takes_subsampling)} codec only")
    original = np.asarray(source.rgb)

    paths = [(s, name) for s in scales for name in codecs
             if scale is not None or not codec_class(name).per_level_models or s in zoo.DEFAULT_MODELS]
    if shortlist is not None:
        paths = _shortlisted(paths, source, subsampling, budget, shortlist, device)
    fitting: list[tuple[Candidate, bytes]] = []
    smallest: list[container.IrnFile] = []
    for s, name in paths:
        try:
            found, least = _search_path(source, name, s, subsampling, budget, device)
        except CodecError:  # this codec cannot store this image (e.g. too large for WebP)
            continue
        smallest += [least] if least is not None else []
        for net, model_ref, lr_image, file, step in found:
            decoded = np.asarray(upscale(net, lr_image, source.rgb.size, device=device,
                                         network_size=file.header.network_size))
            data = container.pack(file)
            fitting.append((Candidate(name, s, model_ref, file.header.quality, len(data),
                                      len(data) * 8 / source.pixels, _psnr(decoded, original), step), data))
    if not fitting:
        hint = "no codec applies"
        if smallest:
            least = min(smallest, key=lambda f: f.size)
            h = least.header
            how = f"x{h.effective_scale:.3g} {h.codec}" + ("" if codec_class(h.codec).lossless else f" q{h.quality}")
            hint = f"the smallest is {least.size * 8 / source.pixels:.4g} bpp ({least.size} bytes, {how})"
        raise CodecError(f"no irncodec file of this {source.rgb.width}x{source.rgb.height} image fits "
                         f"{target:g} bits per pixel ({budget} bytes): {hint}")
    best, data = max(fitting, key=lambda item: (item[0].psnr, -item[0].size))
    return RateControlled(data, best, [c for c, _ in fitting])


def _shortlisted(paths: list[tuple[float, str]], source: Source, subsampling: str | None, budget: int,
                 shortlist: int, device: str | torch.device) -> list[tuple[float, str]]:
    """The paths worth the network's passes: the ``shortlist`` image-codec paths of best
    PSNR with Lanczos in the network's place, and the per-level codecs' paths at those
    paths' network scales (every path when no image-codec path fits at all)."""
    image_paths = [(s, name) for s, name in paths if not codec_class(name).per_level_models]
    if len(image_paths) <= shortlist:
        return paths
    ranked = []
    for s, name in image_paths:
        try:
            psnr = _lanczos_psnr(source, name, s, subsampling, budget, device)
        except CodecError:  # this codec cannot store this image: its real path cannot either
            continue
        if psnr is not None:
            ranked.append((psnr, s, name))
    if not ranked:  # nothing fits even without the network: every path, for the error's hint
        return paths
    kept = {(s, name) for _, s, name in sorted(ranked, reverse=True)[:shortlist]}
    network_scales = {network_scale_for(s) for s, _ in kept}
    return [(s, name) for s, name in paths
            if (s, name) in kept or (codec_class(name).per_level_models and s in network_scales)]


def _lanczos_psnr(source: Source, codec: str, scale: float, subsampling: str | None, budget: int,
                  device: str | torch.device) -> float | None:
    """RGB PSNR of a path's best file within ``budget`` with Lanczos resampling in place of the
    network (None when none fits): the same LR size, codec and header, so the same budget."""
    kind, net, model_ref, lr_codec = _image_codec_encoder(codec, scale, subsampling, device)
    resized, padding, lr_size = lr_layout(source.rgb.size, scale, net.scale)
    lr_image = source.rgb.resize(lr_size, RESAMPLING)
    payloads: dict[int, bytes] = {}

    def size_of(quality: int) -> int:
        if quality not in payloads:
            payloads[quality] = lr_codec.encode(lr_image, quality)
        return source.file(net, model_ref, lr_codec, lr_codec.validate_quality(quality), payloads[quality],
                           padding, resized).size

    quality = largest_fitting(*_quality_range(kind), size_of, budget)
    if quality is None:
        return None
    decoded = lr_codec.decode(payloads[quality], lr_size).convert("RGB").resize(source.rgb.size, RESAMPLING)
    return _psnr(np.asarray(decoded), np.asarray(source.rgb))


def _image_codec_encoder(codec: str, scale: float, subsampling: str | None, device: str | torch.device
                         ) -> tuple[type[LRCodec], Any, str, LRCodec]:
    """An image codec's class, network, model name and LR codec for a path (``subsampling``
    only where the codec takes it)."""
    kind = codec_class(codec)
    chosen = subsampling if "subsampling" in kind.options else None
    net, model_ref, lr_codec, _ = load_encoder(codec, None, scale, None, chosen, device)
    return kind, net, model_ref, lr_codec


def _quality_range(kind: type[LRCodec]) -> tuple[int, int]:
    """The qualities bisected over: the codec's, or the one a lossless codec ignores."""
    return (0, 0) if kind.lossless else (kind.min_quality, kind.max_quality)


class Found(NamedTuple):
    """A file that fits, with what decoding it needs."""

    net: Any  #: the network (IRN)
    model: str
    lr_image: Any  #: the LR image the decoder gets (PIL)
    file: container.IrnFile
    step: float = 1.0
#: Points of the step grid rate control bisects over on each side of a level.
STEP_POINTS = 32


def _search_path(source: Source, codec: str, scale: float, subsampling: str | None, budget: int,
                 device: str | torch.device) -> tuple[list[Found], container.IrnFile | None]:
    """The path's best files within ``budget`` (network, model, decoded LR image,
    file; none, one, or two for a codec with steps), and its smallest file."""
    if codec_class(codec).per_level_models:
        return _search_levels(source, codec, scale, budget, device)
    made: dict[int, Found] = {}
    kind, net, model_ref, lr_codec = _image_codec_encoder(codec, scale, subsampling, device)
    lr_image, padding, resized = source.downscale(net, scale, device)

    def size_of(quality: int) -> int:
        if quality not in made:
            payload = lr_codec.encode(lr_image, quality)
            file = source.file(net, model_ref, lr_codec, lr_codec.validate_quality(quality), payload, padding,
                               resized)
            made[quality] = Found(net, model_ref, None, file)
        return made[quality].file.size

    low, high = _quality_range(kind)
    quality = largest_fitting(low, high, size_of, budget)
    smallest = made[low].file
    if quality is None:
        return [], smallest
    file = made[quality].file
    decoded_lr = lr_codec.decode(file.payload, (file.header.lr_width, file.header.lr_height))
    return [Found(net, model_ref, decoded_lr, file)], smallest


def _search_levels(source: Source, codec: str, scale: float, budget: int,
                   device: str | torch.device) -> tuple[list[Found], container.IrnFile | None]:
    """Levels are models of growing rate: bisect over them, then over the step on each side."""
    kind = codec_class(codec)
    levels = zoo.levels(codec, network_scale_for(scale))
    if not levels:
        return [], None
    lr_images: dict[int, tuple] = {}
    made: dict[tuple[int, float], Found] = {}

    def encode(index: int, step: float = 1.0) -> Found:
        if index not in lr_images:
            net, model_ref, _, quality = load_encoder(codec, levels[index], scale, None, None, device)
            lr_images[index] = (net, model_ref, quality, *source.downscale(net, scale, device))
        net, model_ref, quality, lr_image, padding, resized = lr_images[index]
        if (index, step) not in made:
            lr_codec = kind.for_model(net, model_ref, **({"step": step} if step != 1 else {}))
            payload, decoded_lr = lr_codec.encode_with_reconstruction(lr_image, quality)
            file = source.file(net, model_ref, lr_codec, quality, payload, padding, resized)
            made[index, step] = Found(net, model_ref, decoded_lr, file, step)
        return made[index, step]

    index = largest_fitting(0, len(levels) - 1, lambda i: encode(i).file.size, budget)
    if kind.step_range is None:
        return ([] if index is None else [encode(index)]), encode(0).file
    finest, coarsest = kind.step_range
    found = []
    if index is not None:  # this level with finer steps, as far as the budget goes
        grid = [round(finest ** (j / STEP_POINTS), 3) for j in range(STEP_POINTS + 1)]
        j = largest_fitting(0, STEP_POINTS, lambda j: encode(index, grid[j]).file.size, budget)
        found.append(encode(index, grid[j or 0]))  # grid[0] is the level itself, which fits
    upper = 0 if index is None else index + 1
    if upper < len(levels):  # the next level up with coarser steps, if any fit
        grid = [round(coarsest ** (1 - j / STEP_POINTS), 3) for j in range(STEP_POINTS + 1)]
        j = largest_fitting(0, STEP_POINTS - 1, lambda j: encode(upper, grid[j]).file.size, budget)
        if j is not None:
            found.append(encode(upper, grid[j]))
    least = encode(0, coarsest).file if index is None else encode(0).file
    return found, least
