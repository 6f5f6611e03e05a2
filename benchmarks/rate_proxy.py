#!/usr/bin/env python
"""How well the rate estimates of :mod:`irncodec.jpeg_proxy` predict the size of the LR file the codec writes.

    python benchmarks/rate_proxy.py                # report the shipped JPEG coefficients' error
    python benchmarks/rate_proxy.py --fit          # refit them on the first dataset, then report
    python benchmarks/rate_proxy.py --codec webp   # the same for WebP (``webp_bits``)

LR images are each photo downscaled x2 two ways: bicubic (antialiased) and by
an IRN model (``--model``, default the JPEG-aware irn-x2-jpeg-small), cropped
to even sides and rounded to 8 bits. Each is saved by the codec's own LR codec
(``lr_codecs`` "jpeg": 4:2:0, optimised Huffman tables; or "webp") at every
``--qualities`` and compared with the estimate (both codecs' estimates are
linear in the same JPEG features, at the same quality number): Pearson and Spearman correlation and
mean absolute percentage error, per dataset, overall and per quality. The
coefficients are fitted (``--fit``) on the first ``--datasets`` entry only, so
the others measure how the proxy does on photos it was not fitted to.
Writes ``rate_proxy.md`` and ``rate_proxy.json`` (``rate_proxy_webp.*`` for WebP) to ``--out``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np
import torch
import torch.nn.functional as F

if not __package__:  # run as a script: the repository root, where the benchmarks package is, goes on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DATASETS, DEFAULT_DATASET, DEFAULT_OUT, list_images

DEFAULT_DATASETS = f"{DEFAULT_DATASET},{DATASETS / 'set14'}"
#: Per LR codec: the jpeg_proxy constant holding its coefficients, the default IRN model, its settings.
MODELS = {"jpeg": ("RATE_COEFFICIENTS", "irn-x2-jpeg-small",
                   "JPEG 4:2:0 with optimised Huffman tables (the codec's settings)"),
          "webp": ("WEBP_RATE_COEFFICIENTS", "irn-x2-webp-v2", "WebP (lossy, the codec's settings)")}


def lr_images(path: Path, model) -> dict[str, torch.Tensor]:
    """The photo's x2 LR images, 8-bit: bicubic and the model's."""
    from PIL import Image

    from irncodec.metrics import quantize_8bit
    from irncodec.tensors import image_to_tensor

    with Image.open(path) as im:
        hr = image_to_tensor(im.convert("RGB"))
    hr = hr[..., : hr.shape[-2] // 2 * 2, : hr.shape[-1] // 2 * 2]
    with torch.no_grad():
        learned = model.rescale(hr)[0]
    bicubic = F.interpolate(hr, scale_factor=0.5, mode="bicubic", antialias=True, align_corners=False)
    return {"bicubic": quantize_8bit(bicubic.clamp(0, 1)), "irn": quantize_8bit(learned.clamp(0, 1))}


def collect(datasets: list[Path], qualities: list[int], model_name: str, limit: int | None,
            codec: str = "jpeg") -> list[dict]:
    """One row per (image, LR kind, quality): real bits and features."""
    from irncodec.jpeg_proxy import jpeg_rate_features
    from irncodec.lr_codecs import get_codec
    from irncodec.tensors import tensor_to_image
    from irncodec.zoo import load_model

    model = load_model(model_name)
    lr_codec = get_codec(codec)
    rows = []
    for folder in datasets:
        for path in list_images(folder, limit):
            for kind, lr in lr_images(path, model).items():
                image = tensor_to_image(lr)
                for q in qualities:
                    rows.append({"dataset": folder.name, "image": path.stem, "lr": kind, "quality": q,
                                 "bits": 8 * len(lr_codec.encode(image, q)),
                                 "features": jpeg_rate_features(lr, q)[0].double().numpy()})
    return rows


def fit(rows: list[dict]) -> np.ndarray:
    """Least squares on relative error, so small and large files count alike; the
    coefficients are kept >= 0, so that as a loss no feature can buy bits back
    by growing (an unconstrained fit gives WebP negative chroma weights)."""
    from scipy.optimize import nnls

    a = np.stack([r["features"] for r in rows])
    y = np.array([r["bits"] for r in rows], np.float64)
    coefficients, _ = nnls(a / y[:, None], np.ones_like(y))
    return coefficients


def scores(rows: list[dict], coefficients: np.ndarray) -> dict[str, float]:
    from scipy.stats import pearsonr, spearmanr

    y = np.array([r["bits"] for r in rows], np.float64)
    estimate = np.stack([r["features"] for r in rows]) @ coefficients
    error = np.abs(estimate - y) / y
    out = {"n": len(rows), "mape_pct": 100 * float(error.mean()), "max_ape_pct": 100 * float(error.max()),
           "bias_pct": 100 * float(np.mean((estimate - y) / y))}
    if len(rows) > 2:
        out["pearson"] = float(pearsonr(estimate, y)[0])
        out["spearman"] = float(spearmanr(estimate, y)[0])
    return out


def table(rows: list[dict], coefficients: np.ndarray, qualities: list[int]) -> tuple[str, dict]:
    lines = ["| data | LR | quality | n | Pearson | Spearman | MAPE % | max APE % | bias % |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    results = {}
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    for ds in datasets:
        groups = [("all", "all", [r for r in rows if r["dataset"] == ds])]
        groups += [(kind, "all", [r for r in rows if r["dataset"] == ds and r["lr"] == kind])
                   for kind in ("bicubic", "irn")]
        groups += [("all", str(q), [r for r in rows if r["dataset"] == ds and r["quality"] == q]) for q in qualities]
        for kind, q, group in groups:
            s = scores(group, coefficients)
            results[f"{ds}/{kind}/{q}"] = s
            corr = (f"{s['pearson']:.4f} | {s['spearman']:.4f}" if "pearson" in s else "- | -")
            lines.append(f"| {ds} | {kind} | {q} | {s['n']} | {corr} | {s['mape_pct']:.2f} | "
                         f"{s['max_ape_pct']:.1f} | {s['bias_pct']:+.2f} |")
    return "\n".join(lines), results


@click.command()
@click.option("--datasets", default=DEFAULT_DATASETS, show_default=True,
              help="Comma-separated dataset folders; --fit fits on the first.")
@click.option("--qualities", default="20,30,40,50,60,70,80,90,95", show_default=True)
@click.option("--codec", type=click.Choice(list(MODELS)), default="jpeg", show_default=True,
              help="The LR codec whose file sizes are estimated.")
@click.option("--model", "model_name", default=None,
              help="x2 model whose LR images are measured besides bicubic ones "
                   "[default: irn-x2-jpeg-small for jpeg, irn-x2-webp-v2 for webp].")
@click.option("--fit", "refit", is_flag=True, help="Refit the coefficients on the first dataset.")
@click.option("--limit", type=int, default=None, help="Use the first N images of each dataset.")
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True)
def main(datasets: str, qualities: str, codec: str, model_name: str | None, refit: bool, limit: int | None,
         threads: int, out: Path) -> None:
    """Measure (and optionally refit) the JPEG or WebP rate estimate against real file sizes."""
    from irncodec import jpeg_proxy

    torch.set_num_threads(threads)
    constant, default_model, settings = MODELS[codec]
    model_name = model_name or default_model
    folders = [Path(d.strip()) for d in datasets.split(",") if d.strip()]
    qs = [int(q) for q in qualities.split(",")]
    rows = collect(folders, qs, model_name, limit, codec)
    coefficients = np.array(getattr(jpeg_proxy, constant), np.float64)
    note = f"the shipped {constant}"
    if refit:
        coefficients = fit([r for r in rows if r["dataset"] == folders[0].name])
        note = f"coefficients refitted on {folders[0].name}"
        click.echo(f"fitted {constant} = ({', '.join(f'{c:.4g}' for c in coefficients)})")
    text, results = table(rows, coefficients, qs)
    option = (" --fit" if refit else "") + ("" if codec == "jpeg" else f" --codec {codec}")
    header = (f"# {codec.upper()} rate estimate against real file sizes\n\n"
              f"`python benchmarks/rate_proxy.py{option}`; {note}: "
              f"({', '.join(f'{c:.4g}' for c in coefficients)}). LR images: x2 bicubic and {model_name}; "
              f"{settings}.\n\n")
    stem = "rate_proxy" if codec == "jpeg" else f"rate_proxy_{codec}"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(header + text + "\n")
    (out / f"{stem}.json").write_text(json.dumps({"coefficients": coefficients.tolist(), "model": model_name,
                                                     "qualities": qs, "results": results}, indent=1) + "\n")
    click.echo(text)


if __name__ == "__main__":
    main()
