#!/usr/bin/env python
"""Side-by-side table from an rd_curve.py run: each irncodec point against
bicubic rescaling with the same LR codec and quality (the same LR payload
budget, without the network) and against full-size JPEG at the nearest bpp.

    python benchmarks/rd_curve.py --qf 30..90:20
    python benchmarks/compare_table.py benchmarks/results/rd_summary.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

if not __package__:  # run as a script: the repository root, where the benchmarks package is, goes on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DEFAULT_OUT

DEFAULT_SUMMARY = DEFAULT_OUT / "rd_summary.json"


def nearest_by_bpp(points: list[dict[str, Any]], bpp: float) -> dict[str, Any]:
    return min(points, key=lambda p: abs(p["bpp"] - bpp))


def point_at(points: list[dict[str, Any]], quality: Any) -> dict[str, Any] | None:
    return next((p for p in points if p["quality"] == quality), None)


def _cells(p: dict[str, Any] | None) -> list[str]:
    if p is None:
        return ["–", "–", "–"]
    return [f"{p['bpp']:.3f}", f"{p['psnr']:.2f}", f"{p['ssim']:.4f}"]


def compare_rows(methods: dict[str, dict[str, Any]], anchor: str = "jpeg-420") -> list[list[str]]:
    """One row per irncodec point: its numbers, bicubic's, and the anchor's at the nearest bpp."""
    rows = []
    anchor_points = methods.get(anchor, {}).get("points", [])
    for name, curve in sorted(methods.items()):
        if not name.startswith("irncodec-"):
            continue
        bicubic = methods.get(name.replace("irncodec-", "bicubic-"), {}).get("points", [])
        for p in curve["points"]:
            q = p["quality"]
            label = f"{name.removeprefix('irncodec-')}" + ("" if q is None else f" q{q}")
            row = [label] + _cells(p) + _cells(point_at(bicubic, q))
            if anchor_points:
                a = nearest_by_bpp(anchor_points, p["bpp"])
                row += [f"q{a['quality']}"] + _cells(a)
            rows.append(row)
    return rows


def markdown(rows: list[list[str]]) -> str:
    head = ["irncodec", "bpp", "PSNR", "SSIM", "bicubic bpp", "PSNR", "SSIM",
            "JPEG at nearest bpp", "bpp", "PSNR", "SSIM"]
    lines = ["| " + " | ".join(head[: len(rows[0]) if rows else len(head)]) + " |",
             "|" + " --- |" * (len(rows[0]) if rows else len(head))]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


@click.command()
@click.argument("summary", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                default=DEFAULT_SUMMARY)
def main(summary: Path) -> None:
    """Print the comparison table (markdown) of an rd_summary.json."""
    with open(summary) as f:
        methods = json.load(f)["methods"]
    rows = compare_rows(methods)
    if not rows:
        sys.exit("no irncodec points in " + str(summary))
    click.echo(markdown(rows), nl=False)


if __name__ == "__main__":
    main()
