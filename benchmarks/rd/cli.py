"""The RD command (``python -m benchmarks.rd``, ``python benchmarks/rd_curve.py``): its
options, the checks of what they ask for, and the run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..common import DEFAULT_DATASET, DEFAULT_OUT, resolve_models, scales_option
from .bd import DEFAULT_BD_RANGE
from .measure import load_dists_or_note, load_images, measure_all, warm_up
from .report import summary_markdown, write_outputs
from .rows import mean_rows
from .settings import (
    bicubic_settings,
    default_lr_codecs,
    irncodec_models,
    irncodec_settings,
    parse_qualities,
    pillow_settings,
)

# --- options -------------------------------------------------------------------

def _qualities_option(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        return parse_qualities(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc} (use A..B, A..B:STEP, 30,50,90 or 75)") from None


def _codecs_option(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    from irncodec.lr_codecs import available_codecs

    names = [t.strip().lower() for v in value for t in v.split(",") if t.strip()] or default_lr_codecs()
    known = set(available_codecs())
    for name in names:
        if name not in known:
            raise click.BadParameter(f"unknown LR codec '{name}': choose from {', '.join(sorted(known))}")
    return list(dict.fromkeys(names))


def bd_range_option(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, float]:
    """``--bd-range LO,HI`` as two bpp values, 0 < LO < HI (``bd_report.py`` takes it too)."""
    try:
        lo, hi = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter("give two numbers, LO,HI (bits per pixel)") from None
    if not 0 < lo < hi:
        raise click.BadParameter(f"need 0 < LO < HI, got {lo:g},{hi:g}")
    return lo, hi


# --- checks --------------------------------------------------------------------

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


# --- the run -------------------------------------------------------------------

@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--qf", "qualities", default="30..90", show_default=True, callback=_qualities_option,
              help="LR qualities: A..B (step 10), A..B:STEP, 30,50,90 or 75.")
@click.option("--dataset", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_DATASET,
              show_default="../shared/datasets/kodak", help="Folder of test images.")
@click.option("--scale", "scales", multiple=True, callback=scales_option,
              help="Scales from 1.1 to 4, e.g. 2, 1.5,2,4 (repeatable); default: 2 and 4, the networks' own.")
@click.option("--codec", "codecs", multiple=True, callback=_codecs_option,
              help="irncodec LR codec, e.g. jpeg, webp, png, entropy (repeatable); default: every lossy "
                   "codec, a learned one (entropy) when shipped, at its shipped levels whatever --qf says.")
@click.option("--model", default=None, help="Zoo name or .safetensors path instead of the shipped model.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_OUT,
              show_default="benchmarks/results", help="Output folder.")
@click.option("--device", default="cpu", show_default=True, help="torch device for irncodec and DISTS.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N images.")
@click.option("--temperature", type=click.FloatRange(min=0), default=None,
              help="Spread of z at decode relative to the prior (0 = its mean, 1 = the prior) "
                   "[default: each model's own, as irncodec decodes].")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch.set_num_threads (default: torch's choice).")
@click.option("--no-baselines", is_flag=True, help="Measure irncodec only.")
@click.option("--bd-range", default=f"{DEFAULT_BD_RANGE[0]},{DEFAULT_BD_RANGE[1]}", show_default=True,
              callback=bd_range_option, help="LO,HI bpp window of the windowed BD table.")
def main(qualities: list[int], dataset: Path, scales: list[float], codecs: list[str], model: str | None,
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
    meta: dict[str, Any] = {"dataset": str(dataset), "dataset_name": dataset.resolve().name,
                            "images": [name for name, _ in images], "models": series_models,
                            "device": device, "temperature": temperature, "qualities": qualities,
                            "dists": dists is not None, "notes": notes}
    meta["bd_range"] = list(bd_range)
    bd_md = write_outputs(out, rows, means, meta, dists is not None, dataset, bd_range)
    click.echo(summary_markdown(means, dists is not None))
    click.echo(bd_md)
    click.echo(f"wrote {out}/rd_points.csv, rd_summary.json, rd_curve.png, bd_rate.md")
