#!/usr/bin/env python
"""irncodec at a target size against the codecs people use, at no larger a file.

    python benchmarks/target_bpp.py --targets 0.25,0.4 --images kodim01,kodim05,kodim15,kodim23

For each image and target: ``irncodec encode --target-bpp`` (its best path
over scales, LR codecs and qualities), and for each baseline the highest
quality whose file is no larger than the target: full-size JPEG 4:2:0, WebP
and AVIF (Pillow; the settings of the RD harness, ``benchmarks.rd``), and
bicubic x2 + JPEG + bicubic (the LR JPEG's bytes alone, no container), and
``lanczos-webp``: Lanczos down to the best of scales 1.1-2 + WebP + Lanczos up,
which is irncodec's resampling and LR codec without the network. RGB PSNR on
8-bit images. ``--methods`` measures only some columns (e.g. a new baseline).
Writes ``target_bpp.md`` (per image and mean, and the gains in dB) to ``--out``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np
from PIL import Image, features

if not __package__:  # run as a script: the repository root, where the benchmarks package is, goes on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DEFAULT_DATASET, DEFAULT_OUT, list_images, psnr
from benchmarks.rd.measure import measure_bicubic, measure_pillow, measure_resampled
from benchmarks.rd.settings import PILLOW_BASELINES


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


#: Scales of the resampled baselines: rate control's scales up to 2 (``SEARCH_SCALES``).
RESAMPLED_SCALES = (1.1, 1.25, 1.5, 2)


def _by_quality(run, low: int, high: int):
    """A baseline that bisects one setting's quality: best(img, budget) -> (coded, how) | None."""
    def best(img: Image.Image, budget: int):
        found = best_within(budget, run(img), low, high)
        return None if found is None else (found[1], f"q{found[0]}")
    return best


def _resampled(codec: str):
    """Lanczos to each of RESAMPLED_SCALES + ``codec`` + Lanczos back, the best fitting file over
    scales and qualities: irncodec's own choice of scale, without the network."""
    def best(img: Image.Image, budget: int):
        found = []
        for scale in RESAMPLED_SCALES:
            hit = best_within(budget, lambda q, scale=scale: measure_resampled(img, scale, codec, q), 0, 100)
            if hit is not None:
                found.append((psnr(img, hit[1].image), hit[1], f"x{scale:g} q{hit[0]}"))
        if not found:
            return None
        _, coded, how = max(found, key=lambda item: item[0])
        return coded, how
    return best


def baselines() -> dict[str, Callable[[Image.Image, int], tuple[Any, str] | None]]:
    """name -> best(image, budget in bytes): the baseline's best file no larger, and how it was made."""
    out = {}
    for name in ("jpeg-420", "webp", "avif"):
        fmt, options, feature = PILLOW_BASELINES[name]
        if feature and not features.check(feature):
            continue
        run = (lambda img, fmt=fmt, options=options: (lambda q: measure_pillow(img, fmt, q, **options)))
        out[name] = _by_quality(run, 1 if name == "jpeg-420" else 0, 100)
    out["bicubic-x2-jpeg"] = _by_quality(lambda img: (lambda q: measure_bicubic(img, 2, "jpeg", q)), 1, 100)
    out["lanczos-webp"] = _resampled("webp")
    return out


@click.command()
@click.option("--dataset", type=click.Path(path_type=Path), default=DEFAULT_DATASET, show_default=True)
@click.option("--images", default="kodim01,kodim05,kodim15,kodim23", show_default=True,
              help="Comma-separated image names (without suffix) from the dataset.")
@click.option("--targets", default="0.25,0.4", show_default=True, help="Comma-separated bits per pixel.")
@click.option("--methods", default=None,
              help="Comma-separated columns to measure (default: irncodec and every baseline).")
@click.option("--shortlist", default=None,
              help="Paths rate control runs through the network after ranking them without it, "
                   "or 'all' for every path [default: the library's].")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True)
def main(dataset: Path, images: str, targets: str, methods: str | None, shortlist: str | None, out: Path) -> None:
    from irncodec.ratecontrol import SHORTLIST, encode_to_target

    if shortlist is None:
        short: int | None = SHORTLIST
    elif shortlist == "all":
        short = None
    elif shortlist.isdigit() and int(shortlist) > 0:
        short = int(shortlist)
    else:
        raise click.BadParameter(f"a positive whole number or 'all', got {shortlist!r}", param_hint="--shortlist")

    wanted = [s.strip() for s in images.split(",") if s.strip()]
    paths = {p.stem: p for p in list_images(dataset)}
    missing = [w for w in wanted if w not in paths]
    if missing:
        raise click.BadParameter(f"not in {dataset}: {', '.join(missing)}", param_hint="--images")
    bpps = [float(t) for t in targets.split(",")]
    every = baselines()
    names = ["irncodec", *every]
    if methods is not None:
        chosen = [m.strip() for m in methods.split(",") if m.strip()]
        unknown = [m for m in chosen if m not in names]
        if unknown or not chosen:
            raise click.BadParameter(f"unknown {', '.join(unknown) or 'empty list'}: choose from {', '.join(names)}",
                                     param_hint="--methods")
        names = [m for m in names if m in chosen]
    rows = []  # (target, image, method, bpp, psnr, how)
    for target in bpps:
        for name in wanted:
            img = Image.open(paths[name]).convert("RGB")
            pixels = img.width * img.height
            budget = int(target * pixels // 8)
            if "irncodec" in names:
                start = time.perf_counter()
                result = encode_to_target(img, target, shortlist=short)
                import irncodec

                decoded = irncodec.decode(result.data)
                c = result.choice
                rows.append((target, name, "irncodec", len(result.data) * 8 / pixels, psnr(img, decoded),
                             f"x{c.scale:g} {c.codec} q{c.quality}, {time.perf_counter() - start:.0f} s"))
            for method in names[1:] if "irncodec" in names else names:
                found = every[method](img, budget)
                if found is None:
                    rows.append((target, name, method, None, None, "no file fits"))
                else:
                    coded, how = found
                    rows.append((target, name, method, coded.nbytes * 8 / pixels, psnr(img, coded.image), how))
            click.echo(f"{target} bpp {name}: " + ", ".join(f"{r[2]} {r[4]:.2f}" for r in rows[-len(names):]
                                                            if r[4] is not None))
    command = f"python benchmarks/target_bpp.py --targets {targets} --images {images}"
    command += f" --methods {methods}" if methods is not None else ""
    command += f" --shortlist {shortlist}" if shortlist is not None else ""
    lines = [f"At a target size: irncodec `--target-bpp` against the best baseline file no larger "
             f"(`{command}`; {dataset.name}). bpp / RGB PSNR (dB) / how.", ""]
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
        lines.append("")
        ours = [r for r in rows if r[0] == target and r[2] == "irncodec"]
        if ours:
            low, high = min(r[3] for r in ours) / target, max(r[3] for r in ours) / target
            mine = np.mean([o[4] for o in ours])
            gains = []
            for m in names[1:]:
                theirs = [r[4] for r in rows if r[0] == target and r[2] == m]
                if all(v is not None for v in theirs):
                    gains.append(f"{m} {mine - np.mean(theirs):+.2f} dB")
            gain_text = f" Mean gain of irncodec: {', '.join(gains)}." if gains else ""
            lines.append(f"irncodec files at {low:.2f}x–{high:.2f}x of the target.{gain_text}")
            lines.append("")
    out.mkdir(parents=True, exist_ok=True)
    (out / "target_bpp.md").write_text("\n".join(lines))
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
