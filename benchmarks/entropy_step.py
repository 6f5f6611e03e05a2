#!/usr/bin/env python
"""What the entropy coder's step multiplier costs: each level's rate-quality curve
when its quantisation steps are scaled, against the curve of the trained levels.

    python benchmarks/entropy_step.py --steps 0.5,0.7,0.85,1,1.2,1.45,1.7,2.5

For every shipped x2 entropy level and step: mean bpp (whole ``.irn`` files) and
mean RGB PSNR over the dataset, decoded as ``irncodec.decode`` does; and, for
each stepped point, its PSNR minus that of the trained levels' own curve at
the same rate (piecewise linear in log-rate between the levels at step 1;
outside their range the nearest segment is extended). Rate control
(``--target-bpp``) uses steps in the codec's ``step_range``. Writes
``entropy_step.md`` and ``.json`` to ``--out``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np
from PIL import Image

if not __package__:  # run as a script: the repository root, where the benchmarks package is, goes on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DEFAULT_DATASET, DEFAULT_OUT, list_images


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def measure(model: str, steps: list[float], images: list[Path]) -> list[dict]:
    """Mean bpp and PSNR of ``model``'s files at each step."""
    from irncodec import container, zoo
    from irncodec.lr_codecs import codec_class
    from irncodec.pipeline import Source, downscale, upscale

    net = zoo.load_model(model)
    quality = next(q for (s, q), name in zoo.LEVEL_MODELS["entropy"].items() if name == model)
    rows = {step: {"bits": 0, "pixels": 0, "psnr": []} for step in steps}
    for path in images:
        source = Source(Image.open(path).convert("RGB"))
        lr, px, py = downscale(net, source.rgb)
        for step in steps:
            lr_codec = codec_class("entropy").for_model(net, model, step=step)
            payload, lr_hat = lr_codec.encode_with_reconstruction(lr, quality)
            size = len(container.pack(source.file(net, model, lr_codec, quality, payload, (px, py))))
            decoded = upscale(net, lr_hat, source.rgb.size)
            row = rows[step]
            row["bits"] += 8 * size
            row["pixels"] += source.pixels
            row["psnr"].append(psnr(np.asarray(decoded), np.asarray(source.rgb)))
    return [{"model": model, "level": quality, "step": step, "bpp": r["bits"] / r["pixels"],
             "psnr": float(np.mean(r["psnr"]))} for step, r in rows.items()]


def level_curve_psnr(levels: list[dict], bpp: float) -> float:
    """PSNR of the trained levels' curve at ``bpp`` (linear in log-rate, ends extended)."""
    points = sorted((np.log(r["bpp"]), r["psnr"]) for r in levels)
    x = np.log(bpp)
    k = min(max(int(np.searchsorted([p[0] for p in points], x)) - 1, 0), len(points) - 2)
    (x0, y0), (x1, y1) = points[k], points[k + 1]
    return float(y0 + (y1 - y0) * (x - x0) / (x1 - x0))


@click.command()
@click.option("--dataset", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_DATASET,
              show_default=True)
@click.option("--steps", default="0.5,0.7,0.85,1,1.2,1.45,1.7,2.5", show_default=True,
              help="Step multipliers (1 = the level as trained).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N images.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT, show_default=True)
def main(dataset: Path, steps: str, limit: int | None, out: Path) -> None:
    """Rate and quality of every entropy level at each step multiplier."""
    from irncodec import zoo

    images = list_images(dataset, limit)
    step_list = sorted({float(s) for s in steps.split(",")} | {1.0})
    rows = []
    for level in zoo.levels("entropy", 2):
        rows += measure(zoo.LEVEL_MODELS["entropy"][(2, level)], step_list, images)
        click.echo(f"level {level} done", err=True)
    trained = [r for r in rows if r["step"] == 1.0]
    for r in rows:
        r["vs_levels_db"] = r["psnr"] - level_curve_psnr(trained, r["bpp"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "entropy_step.json").write_text(json.dumps(rows, indent=1) + "\n")
    cmd = f"python benchmarks/entropy_step.py --steps {steps}" + (f" --limit {limit}" if limit else "")
    lines = [f"# Entropy coder: rate levels at scaled quantisation steps, x2, {dataset.name} ({len(images)} images)",
             "", f"`{cmd}`. bpp / RGB PSNR dB / PSNR minus the trained levels' curve at that rate (dB).", "",
             "| level (model) | " + " | ".join(f"step {s:g}" for s in step_list) + " |",
             "|---|" + "---|" * len(step_list)]
    for level in zoo.levels("entropy", 2):
        model = zoo.LEVEL_MODELS["entropy"][(2, level)]
        cells = [f"{r['bpp']:.3f} / {r['psnr']:.2f} / {r['vs_levels_db']:+.2f}"
                 for r in rows if r["model"] == model]
        lines.append(f"| {level} ({model}) | " + " | ".join(cells) + " |")
    (out / "entropy_step.md").write_text("\n".join(lines) + "\n")
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
