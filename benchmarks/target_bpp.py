#!/usr/bin/env python
"""irncodec at a target size against the codecs people use, at no larger a file.

    python benchmarks/target_bpp.py --targets 0.25,0.4 --images kodim01,kodim05,kodim15,kodim23

For each image and target: ``irncodec encode --target-bpp`` (its best path
over scales, LR codecs and qualities), and for each baseline the highest
quality whose file is no larger than the target: full-size JPEG 4:2:0, WebP
and AVIF (Pillow; the settings of the RD harness, ``benchmarks.rd``), and
bicubic x2 + JPEG + bicubic (the LR JPEG's bytes alone, no container). RGB PSNR
on 8-bit images.
Writes ``target_bpp.md`` (per image and mean, and the gains in dB) to ``--out``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import numpy as np
from PIL import Image, features

if not __package__:  # run as a script: the repository root, where the benchmarks package is, goes on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DEFAULT_DATASET, DEFAULT_OUT, list_images
from benchmarks.rd.measure import measure_bicubic, measure_pillow
from benchmarks.rd.settings import PILLOW_BASELINES


def psnr(a: Image.Image, b: Image.Image) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b.convert("RGB"), np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


def best_within(budget: int, run, low: int, high: int) -> tuple[int, object] | None:
    """(quality, coded) of the highest quality whose bytes fit ``budget``, by bisection."""
    from irncodec.ratecontrol import largest_fitting

    done: dict[int, object] = {}

    def size_of(q: int) -> int:
        if q not in done:
            done[q] = run(q)
        return done[q].nbytes

    q = largest_fitting(low, high, size_of, budget)
    return None if q is None else (q, done[q])


def baselines() -> dict[str, tuple[callable, int, int]]:
    """name -> (run at quality, lowest quality, highest quality)."""
    out = {}
    for name in ("jpeg-420", "webp", "avif"):
        fmt, options, feature = PILLOW_BASELINES[name]
        if feature and not features.check(feature):
            continue
        out[name] = (lambda img, fmt=fmt, options=options: (lambda q: measure_pillow(img, fmt, q, **options)),
                     1 if name == "jpeg-420" else 0, 100)
    out["bicubic-x2-jpeg"] = (lambda img: (lambda q: measure_bicubic(img, 2, "jpeg", q)), 1, 100)
    return out


@click.command()
@click.option("--dataset", type=click.Path(path_type=Path), default=DEFAULT_DATASET, show_default=True)
@click.option("--images", default="kodim01,kodim05,kodim15,kodim23", show_default=True,
              help="Comma-separated image names (without suffix) from the dataset.")
@click.option("--targets", default="0.25,0.4", show_default=True, help="Comma-separated bits per pixel.")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True)
def main(dataset: Path, images: str, targets: str, out: Path) -> None:
    from irncodec.ratecontrol import encode_to_target

    wanted = [s.strip() for s in images.split(",") if s.strip()]
    paths = {p.stem: p for p in list_images(dataset)}
    missing = [w for w in wanted if w not in paths]
    if missing:
        raise click.BadParameter(f"not in {dataset}: {', '.join(missing)}", param_hint="--images")
    bpps = [float(t) for t in targets.split(",")]
    methods = baselines()
    rows = []  # (target, image, method, bpp, psnr, how)
    for target in bpps:
        for name in wanted:
            img = Image.open(paths[name]).convert("RGB")
            pixels = img.width * img.height
            budget = int(target * pixels // 8)
            start = time.perf_counter()
            result = encode_to_target(img, target)
            import irncodec

            decoded = irncodec.decode(result.data)
            c = result.choice
            rows.append((target, name, "irncodec", len(result.data) * 8 / pixels, psnr(img, decoded),
                         f"x{c.scale:g} {c.codec} q{c.quality}, {time.perf_counter() - start:.0f} s"))
            for method, (make, low, high) in methods.items():
                found = best_within(budget, make(img), low, high)
                if found is None:
                    rows.append((target, name, method, None, None, "no file fits"))
                else:
                    q, coded = found
                    rows.append((target, name, method, coded.nbytes * 8 / pixels, psnr(img, coded.image), f"q{q}"))
            click.echo(f"{target} bpp {name}: " + ", ".join(f"{r[2]} {r[4]:.2f}" for r in rows[-len(methods) - 1:]
                                                            if r[4] is not None))
    lines = [f"At a target size: irncodec `--target-bpp` against the best baseline file no larger "
             f"(`python benchmarks/target_bpp.py --targets {targets} --images {images}`; {dataset.name}). "
             "bpp / RGB PSNR (dB) / how.", ""]
    names = ["irncodec"] + list(methods)
    for target in bpps:
        lines += [f"**Target {target} bpp**", "", "| image | " + " | ".join(names) + " |",
                  "| --- |" + " --- |" * len(names)]
        for name in wanted + ["mean"]:
            cells = []
            for method in names:
                sel = [r for r in rows if r[0] == target and r[2] == method and (name == "mean" or r[1] == name)]
                if any(r[4] is None for r in sel):
                    cells.append("–")
                elif name == "mean":
                    cells.append(f"{np.mean([r[3] for r in sel]):.3f} / **{np.mean([r[4] for r in sel]):.2f}**")
                else:
                    cells.append(f"{sel[0][3]:.3f} / {sel[0][4]:.2f} / {sel[0][5]}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        ours = [r for r in rows if r[0] == target and r[2] == "irncodec"]
        lines.append("")
        low, high = min(r[3] for r in ours) / target, max(r[3] for r in ours) / target
        mine = np.mean([o[4] for o in ours])
        gains = []
        for m in methods:
            theirs = [r[4] for r in rows if r[0] == target and r[2] == m]
            if all(v is not None for v in theirs):
                gains.append(f"{m} {mine - np.mean(theirs):+.2f} dB")
        lines.append(f"irncodec files at {low:.2f}x–{high:.2f}x of the target. "
                     f"Mean gain of irncodec: {', '.join(gains)}.")
        lines.append("")
    out.mkdir(parents=True, exist_ok=True)
    (out / "target_bpp.md").write_text("\n".join(lines))
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
