#!/usr/bin/env python
"""How well each network reconstructs an image from its own LR image, stored losslessly.

    python benchmarks/lossless_lr.py --images kodim01,kodim05,kodim15,kodim23
    python benchmarks/lossless_lr.py irn-x2-small runs/gpu/gpu_irn_x2_webp_paper.safetensors

The ceiling of every lossy path through a network, and what training moves
first: ``irncodec encode -c png`` at the network's scale, then decode, RGB PSNR
per image and their mean, per model. With no MODELS, every shipped model of
``--scale``. Writes ``lossless_lr.md`` and ``.json`` to ``--out``.
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

from benchmarks.common import DEFAULT_DATASET, DEFAULT_OUT, list_images, psnr


def measure(model: str, images: list[Path]) -> dict[str, float]:
    """RGB PSNR of each image after a lossless-LR round trip through ``model``."""
    import irncodec

    result = {}
    for path in images:
        image = Image.open(path).convert("RGB")
        decoded = irncodec.decode(irncodec.encode(image, codec="png", model=model), model=model)
        result[path.stem] = psnr(decoded, image)
    return result


def pick_images(dataset: Path, names: str | None, limit: int | None) -> list[Path]:
    paths = list_images(dataset, None if names else limit)
    if not names:
        return paths
    by_stem = {p.stem: p for p in paths}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    missing = [n for n in wanted if n not in by_stem]
    if missing:
        raise click.BadParameter(f"not in {dataset}: {', '.join(missing)}", param_hint="--images")
    return [by_stem[n] for n in wanted]


@click.command()
@click.argument("models", nargs=-1)
@click.option("--scale", type=click.Choice(["2", "4"]), default="2", show_default=True,
              help="Which shipped models, when no MODELS are given.")
@click.option("--dataset", type=click.Path(path_type=Path), default=DEFAULT_DATASET, show_default=True)
@click.option("--images", "names", default=None, help="Comma-separated image names (file stems) of the dataset.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N images.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT, show_default=True)
def main(models: tuple[str, ...], scale: str, dataset: Path, names: str | None, limit: int | None,
         out: Path) -> None:
    """Mean RGB PSNR of each model's lossless-LR round trip (-c png), best first."""
    from irncodec import zoo
    from irncodec.errors import IrnError

    images = pick_images(dataset, names, limit)
    if not models:
        models = tuple(sorted(n for n in zoo.available_models() if zoo.model_scale(n) == int(scale)))
    rows = {}
    with click.progressbar(models, label="models", file=sys.stderr) as bar:
        for model in bar:
            try:
                rows[model] = measure(model, images)
            except IrnError as exc:
                raise click.BadParameter(f"{model}: {exc}", param_hint="MODELS") from None
    means = {model: float(np.mean(list(values.values()))) for model, values in rows.items()}
    ranked = sorted(rows, key=lambda m: -means[m])
    stems = [p.stem for p in images]
    lines = [f"Lossless-LR round trip (`irncodec encode -c png`), RGB PSNR in dB, {dataset.name}:",
             "", "| model | mean | " + " | ".join(stems) + " |", "| --- |" + " ---: |" * (len(stems) + 1)]
    for model in ranked:
        values = " | ".join(f"{rows[model][s]:.2f}" for s in stems)
        lines.append(f"| {model} | {means[model]:.2f} | {values} |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "lossless_lr.md").write_text("\n".join(lines) + "\n")
    summary = {"dataset": dataset.name, "images": stems,
               "models": {m: {"mean_psnr": means[m], "psnr": rows[m]} for m in ranked}}
    (out / "lossless_lr.json").write_text(json.dumps(summary, indent=1) + "\n")
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
