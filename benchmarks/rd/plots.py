"""The RD plot, ``rd_curve.png``: bpp against PSNR, MS-SSIM and DISTS panels, published
series in grey (matplotlib is imported only to draw)."""

from __future__ import annotations

import json
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


def _style(method: str) -> dict[str, Any]:
    if method.startswith("irncodec-"):
        return {"linestyle": "-", "marker": "o", "linewidth": 2}
    if method.startswith("bicubic-"):
        return {"linestyle": ":", "marker": "x"}
    return {"linestyle": "--", "marker": "s", "markersize": 3}


#: Markers that tell the published series apart while they all stay grey.
PUBLISHED_MARKERS = ("v", "^", "D", "P", "*", "h")


def plot_curves(summary: dict[str, dict[str, Any]], path: Path, keys: Sequence[str],
                published: dict[str, dict[str, Any]], title: str = "") -> None:
    """bpp-vs-metric panels, one per key; published series in grey, labelled as such.

    The x axis spans the measured points only, so long published curves do
    not squeeze the range where irncodec lives.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"psnr": "PSNR (dB, RGB)", "ms_ssim": "MS-SSIM (RGB)", "dists": "DISTS (lower is better)"}
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys) + 2.5, 5.5), squeeze=False)
    max_bpp = max((p["bpp"] for c in summary.values() for p in c["points"]), default=1.0)
    for ax, key in zip(axes[0], keys):
        for method, curve in summary.items():
            rates, values = curve_points(curve, key)
            if rates:
                ax.plot(rates, values, label=method, **_style(method))
        for (name, series), marker in zip(published.items(), PUBLISHED_MARKERS * 4):
            if key in series:
                ax.plot(series["bpp"], series[key], color="grey", alpha=0.7, linestyle="-.",
                        marker=marker, markersize=4, label=f"{name} (published)")
        ax.set_xlim(0, max_bpp * 1.05)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(labels[key])
        ax.grid(True, alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="center right", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 2.3 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
