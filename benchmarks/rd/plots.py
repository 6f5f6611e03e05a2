"""The RD plot, ``rd_curve.png``: bpp against PSNR, MS-SSIM and DISTS panels, each codec
in the same colour in every run (matplotlib is imported only to draw)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..common import REPO
from .rows import curve_points

PUBLISHED = REPO / "benchmarks" / "published" / "kodak_compressai.json"


def load_published(path: Path = PUBLISHED) -> dict[str, dict[str, Any]]:
    """Published reference series, or none when the file is absent."""
    if not path.is_file():
        return {}
    with open(path) as f:
        return json.load(f).get("series", {})


#: A fixed colour per codec family, so a codec looks the same in every run's plot.
COLOURS = {"jpeg-420": "tab:blue", "jpeg-444": "tab:cyan", "webp": "tab:green", "avif": "tab:purple",
           "irncodec-envelope": "black", "irncodec-jpeg": "tab:orange", "irncodec-webp": "tab:olive",
           "irncodec-entropy": "tab:red", "irncodec-png": "tab:pink", "bicubic-jpeg": "tab:gray",
           "bicubic-png": "silver"}
#: Colours for the published series (and any method not in COLOURS), by a stable hash of the name.
OTHER_COLOURS = ("tab:brown", "darkgoldenrod", "teal", "indigo", "crimson", "steelblue", "darkkhaki", "slategray")


def _family(method: str) -> str:
    """The method without its scale: ``irncodec-x2-jpeg`` (or ``-x1.5-``) -> ``irncodec-jpeg``."""
    scale = _scale(method)
    return "-".join(part for part in method.split("-") if scale is None or part != f"x{scale}")


def _colour(name: str) -> str:
    known = COLOURS.get(_family(name))
    if known is not None:
        return known
    return OTHER_COLOURS[zlib.crc32(name.encode()) % len(OTHER_COLOURS)]


#: A marker per scale, so a codec's curves at several scales (one colour) stay apart.
SCALE_MARKERS = {"1.25": "^", "1.5": "s", "2": "o", "3": "D", "4": "P"}


def _scale(method: str) -> str | None:
    """The scale in a method's name: ``irncodec-x1.5-jpeg`` -> ``1.5``."""
    for part in method.split("-"):
        if part[:1] == "x" and part[1:].replace(".", "", 1).isdigit():
            return part[1:]
    return None


def _style(method: str) -> dict[str, Any]:
    colour = {"color": _colour(method)}
    if method.startswith("irncodec-"):
        scale = _scale(method)
        return {"linestyle": (0, (5, 1)) if scale in ("3", "4") else "-",
                "marker": SCALE_MARKERS.get(scale or "2", "o"), "linewidth": 2, **colour}
    if method.startswith("bicubic-"):
        return {"linestyle": ":", "marker": "x", **colour}
    return {"linestyle": "--", "marker": "s", "markersize": 3, **colour}


def is_lossless(method: str) -> bool:
    """Series of lossless LR images: far to the right, so kept off the axis range."""
    return method.endswith("-png")


#: Markers that tell the published series apart from the measured ones.
PUBLISHED_MARKERS = ("v", "^", "D", "P", "*", "h")


def plot_curves(summary: dict[str, dict[str, Any]], path: Path, keys: Sequence[str],
                published: dict[str, dict[str, Any]], title: str = "") -> None:
    """bpp-vs-metric panels, one per key; published series in grey, labelled as such.

    The axes span irncodec's lossy points (and a quarter more rate), so neither
    long baseline or published curves nor a lossless point at several bpp
    squeeze the range where irncodec lives; a series entirely beyond it says so
    in the legend.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"psnr": "PSNR (dB, RGB)", "ms_ssim": "MS-SSIM (RGB)", "dists": "DISTS (lower is better)"}
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys) + 3.5, 5.5), squeeze=False)
    ours = [p["bpp"] for m, c in summary.items() if m.startswith("irncodec-x") and not is_lossless(m)
            for p in c["points"]]
    max_bpp = 1.25 * max(ours) if ours else max(
        (p["bpp"] for m, c in summary.items() if not is_lossless(m) for p in c["points"]), default=1.0)
    for ax, key in zip(axes[0], keys):
        for method, curve in summary.items():
            rates, values = curve_points(curve, key)
            if rates:
                beyond = min(rates) > max_bpp * 1.05
                label = method + (f" (at {min(rates):.1f} bpp, off the axis)" if beyond else "")
                ax.plot(rates, values, label=label, **_style(method))
        for (name, series), marker in zip(published.items(), PUBLISHED_MARKERS * 4):
            if key in series:
                ax.plot(series["bpp"], series[key], color=_colour(name), alpha=0.8, linestyle="-.",
                        marker=marker, markersize=4, label=f"{name} (published)")
        ax.set_xlim(0, max_bpp * 1.05)
        shown = [y for line in ax.get_lines() for x, y in zip(line.get_xdata(), line.get_ydata())
                 if x <= max_bpp * 1.05]
        if shown and max(shown) > min(shown):
            low, high = min(shown), max(shown)
            ax.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(labels[key])
        ax.grid(True, alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="center right", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 3.4 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
