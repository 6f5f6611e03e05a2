#!/usr/bin/env python
"""Two models of one LR codec at equal rate: real files, at each scale asked for.

    python benchmarks/compare_models.py irn-x2-webp-small irn-x2-webp-v2 --codec webp --scales 1.25,1.5,2 --limit 8

For each model, scale and quality: irncodec encode and decode every image, the mean
bpp (whole file) and RGB PSNR; then the second model's BD-rate and BD-PSNR against
the first at each scale (Akima, over where the curves overlap). Writes
``compare_models.md`` to ``--out``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

if not __package__:  # run as a script: the repository root, where the benchmarks package is, goes on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DEFAULT_DATASET, DEFAULT_OUT, list_images, psnr, scales_option
from benchmarks.rd.bd import bd_pair
from benchmarks.rd.measure import measure_irncodec


@click.command()
@click.argument("anchor")
@click.argument("test")
@click.option("--codec", default="webp", show_default=True, help="The LR codec both models are used with.")
@click.option("--scales", "scales", multiple=True, callback=scales_option, help="Scales from 1.1 to 4 [default: 2].")
@click.option("--qualities", default="30,50,70,90", show_default=True, help="Comma-separated LR qualities.")
@click.option("--dataset", type=click.Path(path_type=Path), default=DEFAULT_DATASET, show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N images.")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True)
def main(anchor: str, test: str, codec: str, scales: list[float], qualities: str, dataset: Path,
         limit: int | None, out: Path) -> None:
    from PIL import Image

    images = [Image.open(p).convert("RGB") for p in list_images(dataset)[:limit]]
    points: dict[tuple[str, float], list[dict[str, float]]] = {}
    for model in (anchor, test):
        for scale in scales or [2]:
            curve = []
            for q in (int(t) for t in qualities.split(",")):
                coded = [measure_irncodec(img, q, codec, scale, model=model) for img in images]
                pairs = list(zip(coded, images))
                curve.append({"bpp": float(np.mean([c.nbytes * 8 / (i.width * i.height) for c, i in pairs])),
                              "psnr": float(np.mean([psnr(i, c.image) for c, i in pairs])), "quality": q})
            points[model, scale] = curve
            click.echo(f"{model} x{scale:g}: " + ", ".join(f"q{p['quality']} {p['bpp']:.3f} / {p['psnr']:.2f}"
                                                          for p in curve))
    command = " ".join(["python benchmarks/compare_models.py", anchor, test, "--codec", codec,
                        "--scales", ",".join(f"{s:g}" for s in scales or [2]), "--qualities", qualities]
                       + (["--limit", str(limit)] if limit else []))
    lines = [f"`{command}` ({dataset.name}, {len(images)} images): mean bpp / RGB PSNR (dB) per quality, "
             f"and `{test}` against `{anchor}` at equal rate.", "",
             "| scale | " + " | ".join(f"`{m}`" for m in (anchor, test)) + " | BD-rate | BD-PSNR |",
             "| --- | --- | --- | --- | --- |"]
    for scale in scales or [2]:
        bd = bd_pair({"points": points[anchor, scale]}, {"points": points[test, scale]})
        cells = [", ".join(f"{p['bpp']:.3f} / {p['psnr']:.2f}" for p in points[m, scale]) for m in (anchor, test)]
        rate = "–" if bd["bd_rate"] is None else f"{bd['bd_rate']:+.1f} %"
        metric = "–" if bd["bd_metric"] is None else f"{bd['bd_metric']:+.2f} dB"
        lines.append(f"| {scale:g} | " + " | ".join(cells) + f" | {rate} | {metric} |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare_models.md").write_text("\n".join(lines) + "\n")
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
