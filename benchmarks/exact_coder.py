#!/usr/bin/env python
"""What running the entropy coder in integers costs: bits, quality and time, against the float coder.

    python benchmarks/exact_coder.py --limit 6

For every shipped model whose entropy coder runs in integers (manifest
``arithmetic: exact``) and the float model whose weights it shares: mean bpp of
the whole ``.irn`` file, mean RGB PSNR of the decoded image, and the mean
time of ``irncodec.encode`` and ``irncodec.decode`` per image (one warm-up
image first, the model loaded), over the dataset. Writes ``exact_coder.md``
and ``.json`` to ``--out``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np
from PIL import Image

if not __package__:  # run as a script: the repository root, where the benchmarks package is, goes on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DEFAULT_DATASET, DEFAULT_OUT, list_images, psnr


def pairs() -> list[tuple[str, str, int]]:
    """(float model, integer model, rate level) for every shipped integer entropy model."""
    from irncodec import zoo

    shipped = zoo.available_models()
    found = []
    for name, entry in sorted(shipped.items()):
        if entry.get("arithmetic") != zoo.EXACT:
            continue
        base = next(n for n, e in shipped.items() if e["file"] == entry["file"] and not e.get("arithmetic"))
        level = next((q for (_, q), n in zoo.LEVEL_MODELS["entropy"].items() if n in (name, base)), 0)
        found.append((base, name, level))
    return found


def measure(model: str, level: int, images: list[Path]) -> dict:
    import irncodec

    def one(path: Path) -> tuple[int, float, float, float, int]:
        image = Image.open(path).convert("RGB")
        start = time.perf_counter()
        data = irncodec.encode(image, codec="entropy", quality=level or None, model=model)
        encoded = time.perf_counter()
        decoded = irncodec.decode(data)
        done = time.perf_counter()
        return (len(data), psnr(decoded, image), encoded - start, done - encoded,
                image.width * image.height)

    one(images[0])  # warm-up: load the model, first-call allocations
    rows = [one(p) for p in images]
    return {"model": model, "level": level, "images": len(rows),
            "bpp": sum(8 * r[0] for r in rows) / sum(r[4] for r in rows),
            "psnr": float(np.mean([r[1] for r in rows])),
            "encode_s": float(np.mean([r[2] for r in rows])), "decode_s": float(np.mean([r[3] for r in rows]))}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dataset", type=click.Path(path_type=Path), default=DEFAULT_DATASET, show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N images.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT, show_default=True)
def main(dataset: Path, limit: int | None, out: Path) -> None:
    """Float against integer entropy coding of every shipped level on DATASET."""
    import torch

    images = list_images(dataset, limit)
    results = []
    for base, exact, level in pairs():
        a, b = measure(base, level, images), measure(exact, level, images)
        results.append({"level": level, "float": a, "exact": b})
        click.echo(f"q{level}: {a['bpp']:.4f} -> {b['bpp']:.4f} bpp, {a['psnr']:.3f} -> {b['psnr']:.3f} dB, "
                   f"decode {a['decode_s']:.2f} -> {b['decode_s']:.2f} s", err=True)
    lines = [f"Entropy coder in integers against floats (`python benchmarks/exact_coder.py"
             f"{f' --limit {limit}' if limit else ''}`; {dataset.name}, {len(images)} images, "
             f"{torch.get_num_threads()} threads). Whole `.irn` files, RGB PSNR of the decoded image, "
             "mean seconds per image.", "",
             "| level | float model | bpp | PSNR | encode s | decode s | integer model | bpp | PSNR | "
             "encode s | decode s | bits | dB |", "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: "
             "| ---: | ---: | ---: | ---: |"]
    for r in results:
        a, b = r["float"], r["exact"]
        lines.append(f"| q{r['level']} | `{a['model']}` | {a['bpp']:.4f} | {a['psnr']:.3f} | {a['encode_s']:.2f} | "
                     f"{a['decode_s']:.2f} | `{b['model']}` | {b['bpp']:.4f} | {b['psnr']:.3f} | "
                     f"{b['encode_s']:.2f} | {b['decode_s']:.2f} | {100 * (b['bpp'] / a['bpp'] - 1):+.2f} % | "
                     f"{b['psnr'] - a['psnr']:+.3f} |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "exact_coder.md").write_text("\n".join(lines) + "\n")
    (out / "exact_coder.json").write_text(json.dumps({"dataset": str(dataset), "images": len(images),
                                                      "results": results}, indent=2) + "\n")
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
