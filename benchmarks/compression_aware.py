#!/usr/bin/env python
"""Does compression-aware training pay? Plain vs codec-trained models at equal LR quality.

    python benchmarks/compression_aware.py                       # x2, JPEG, Kodak + Set14
    python benchmarks/compression_aware.py --codec webp --limit 4
    python benchmarks/compression_aware.py --model sain-x2.safetensors

For each dataset and LR quality it measures, on every image: bicubic down +
LR codec + bicubic up; the plain IRN; the model trained for the codec (and
any ``--model`` given). All are stored with the same LR codec at the same
quality, so the comparison is at equal QF; the bits per HR pixel of each are
reported too (a model that learned to survive compression may make an LR image
that costs more bits). Distortion is RGB PSNR and SSIM on 8-bit images, mean
over images. Under each table, each model against bicubic at equal *rate*:
BD-rate and BD-PSNR (Akima, over the part of the curves both span), since an
LR image that survives compression better may also cost more bits.
Writes ``compression_aware_x{scale}_{codec}.md`` and ``.json``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import click
from PIL import Image

if not __package__:  # run as a script: the repository root, where the benchmarks package is, goes on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DATASETS, DEFAULT_OUT, list_images
from benchmarks.rd.bd import bd_pair
from benchmarks.rd.measure import Coded, load_images, measure_bicubic, measure_irncodec
from benchmarks.rd.rows import bits_per_pixel
from benchmarks.rd.settings import parse_qualities


def methods(scale: int, codec: str, extra: Sequence[str],
            temperature: float | None = None) -> dict[str, Callable[[Image.Image, int], Coded]]:
    """Method name -> function(image, quality) for one scale and LR codec."""
    from irncodec import zoo

    plain, aware = zoo.DEFAULT_MODELS[scale], zoo.default_model(scale, codec)
    if aware == plain:
        raise click.UsageError(f"no shipped x{scale} model is trained for {codec}: pass --model")
    runs: dict[str, Callable[[Image.Image, int], Coded]] = {
        "bicubic": lambda img, q: measure_bicubic(img, scale, codec, q),
    }
    for name in (plain, aware, *extra):
        if zoo.model_scale(name) != scale:
            raise click.BadParameter(f"model '{name}' is not x{scale}", param_hint="--model")
        runs[zoo.model_name_for(name)] = partial(_irncodec, codec=codec, scale=scale, model=name,
                                                 temperature=temperature)
    return runs


def _irncodec(img: Image.Image, quality: int, codec: str, scale: int, model: str,
              temperature: float | None) -> Coded:
    return measure_irncodec(img, quality, codec, scale, model=model, temperature=temperature)


def measure(images: Sequence[tuple[str, Image.Image]], qualities: Sequence[int],
            runs: dict[str, Callable[[Image.Image, int], Coded]]) -> dict[str, dict[int, dict[str, float]]]:
    """Mean bpp, PSNR and SSIM per method and quality."""
    from tqdm import tqdm

    from irncodec import metrics
    from irncodec.tensors import image_to_tensor

    sums: dict[str, dict[int, dict[str, float]]] = {m: {q: {"bpp": 0.0, "psnr": 0.0, "ssim": 0.0}
                                                        for q in qualities} for m in runs}
    total = len(images) * len(qualities) * len(runs)
    with tqdm(total=total, disable=None, leave=False) as bar:
        for _, img in images:
            ref = image_to_tensor(img)
            for q in qualities:
                for name, run in runs.items():
                    coded = run(img, q)
                    rec = image_to_tensor(coded.image)
                    acc = sums[name][q]
                    acc["bpp"] += bits_per_pixel(coded.nbytes, *img.size)
                    acc["psnr"] += metrics.psnr(ref, rec)
                    acc["ssim"] += metrics.ssim(ref, rec)
                    bar.update()
    return {m: {q: {k: v / len(images) for k, v in acc.items()} for q, acc in per_q.items()}
            for m, per_q in sums.items()}


def markdown(dataset: str, count: int, codec: str, table: dict[str, dict[int, dict[str, float]]]) -> str:
    """One table: a row per quality, bpp / PSNR / SSIM per method, the best PSNR in bold."""
    names = list(table)
    qualities = sorted(next(iter(table.values())))
    lines = [f"**{dataset}** ({count} images), LR stored as {codec}; bpp / RGB PSNR dB / SSIM",
             "", "| QF | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for q in qualities:
        best = max(table[n][q]["psnr"] for n in names)
        cells = []
        for n in names:
            r = table[n][q]
            psnr = f"{r['psnr']:.2f}"
            cells.append(f"{r['bpp']:.3f} / {'**' + psnr + '**' if math.isclose(r['psnr'], best) else psnr}"
                         f" / {r['ssim']:.4f}")
        lines.append(f"| {q} | " + " | ".join(cells) + " |")
    lines += ["", "At equal rate, against bicubic (negative BD-rate = fewer bits for the same PSNR):", "",
              "| method | BD-rate (%) | BD-PSNR (dB) | note |", "|---|---:|---:|---|"]
    for n, row in equal_rate(table).items():
        rate = "—" if row["bd_rate"] is None else f"{row['bd_rate']:+.1f}"
        metric = "—" if row["bd_metric"] is None else f"{row['bd_metric']:+.2f}"
        lines.append(f"| {n} | {rate} | {metric} | {row['note']} |")
    return "\n".join(lines) + "\n"


def equal_rate(table: dict[str, dict[int, dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """BD of every method against bicubic over their mean (bpp, PSNR) points."""
    def curve(name: str) -> dict[str, Any]:
        return {"points": [{"bpp": r["bpp"], "psnr": r["psnr"]} for r in table[name].values()]}

    return {n: bd_pair(curve("bicubic"), curve(n)) for n in table if n != "bicubic"}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dataset", "datasets", type=click.Path(path_type=Path, file_okay=False), multiple=True,
              help="Image folder (repeatable) [default: ../shared/datasets/kodak and set14].")
@click.option("--qf", "qualities", default="30,50,70,90", show_default=True, help="LR qualities.")
@click.option("--scale", type=click.Choice(["2", "4"]), default="2", show_default=True)
@click.option("--codec", type=click.Choice(["jpeg", "webp"]), default="jpeg", show_default=True)
@click.option("--model", "extra", multiple=True, help="Another model to compare (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N images.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_OUT,
              show_default="benchmarks/results")
@click.option("--temperature", type=click.FloatRange(min=0), default=None,
              help="Spread of z when irncodec decodes (0: the prior's mean; 1: sampled) "
                   "[default: each model's own, as irncodec decodes].")
def main(datasets: tuple[Path, ...], qualities: str, scale: str, codec: str, extra: tuple[str, ...],
         limit: int | None, out: Path, temperature: float | None) -> None:
    """Plain vs compression-aware irncodec vs bicubic at equal LR quality."""
    try:
        qf = parse_qualities(qualities)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--qf") from None
    runs = methods(int(scale), codec, extra, temperature)
    folders = list(datasets) or [DATASETS / "kodak", DATASETS / "set14"]
    results: dict[str, Any] = {"scale": int(scale), "codec": codec, "qualities": qf, "temperature": temperature,
                               "datasets": {}}
    parts = []
    for folder in folders:
        list_images(folder)  # a clear error for a missing or empty folder
        images = load_images(folder, limit)
        table = measure(images, qf, runs)
        name = folder.resolve().name
        results["datasets"][name] = {"images": [n for n, _ in images], "methods": table,
                                     "equal_rate_vs_bicubic": equal_rate(table)}
        parts.append(markdown(name, len(images), codec, table))
        click.echo(parts[-1])
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"compression_aware_x{scale}_{codec}"
    options = [f"--scale {scale}", f"--codec {codec}", f"--qf {qualities}"]
    options += [f"--dataset {d}" for d in datasets] + [f"--model {m}" for m in extra]
    options += [f"--limit {limit}"] if limit else []
    command = " ".join(["python benchmarks/compression_aware.py", *options])
    if temperature is not None:
        command += f" --temperature {temperature:g}"
    z = "as each model decodes by default" if temperature is None else f"at temperature {temperature:g}"
    header = f"# Compression-aware vs plain irncodec, x{scale}, {codec}\n\n`{command}`; z {z}.\n\n"
    stem.with_suffix(".md").write_text(header + "\n".join(parts))
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    click.echo(f"wrote {stem}.md and .json")


if __name__ == "__main__":
    main()
