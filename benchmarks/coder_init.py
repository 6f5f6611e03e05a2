#!/usr/bin/env python
"""Why the LR entropy coder starts as a DCT codec: coder-only training from scratch.

    python benchmarks/coder_init.py --iterations 300

Trains two LR coders of the same hyperprior on the same 48 px crops of the
training photos (bicubic-free: the crops stand in for LR images) with
CompressAI's loss, bits per pixel + lambda * 255^2 * MSE, and prints the
running rate and PSNR every 50 iterations:

* ``dct``: irncodec's coder (:class:`irncodec.models.lr_coder.LRHyperprior`):
  orthonormal 4x4 colour-DCT transform with learned steps and post-filter;
* ``gdn``: the same hyperprior with Balle's learned GDN analysis and
  synthesis transforms (two stride-2 5x5 convolutions each, 64 channels,
  96 latents), started from random weights as CompressAI's models are.

This is the budget of a CPU training run, where the DCT start is what makes
joint training with the network possible. Writes ``coder_init.md`` to ``--out``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import click
import torch
from torch import nn

if not __package__:  # run as a script: the repository root, where the benchmarks package is, goes on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DATASETS, DEFAULT_OUT

DEFAULT_TRAIN = DATASETS / "train"


def gdn_coder() -> nn.Module:
    """The hyperprior of irncodec's coder with GDN transforms in place of the DCT (4x down)."""
    from compressai.layers import GDN
    from compressai.models.utils import conv, deconv

    from irncodec.models.lr_coder import LRHyperprior

    class GDNHyperprior(LRHyperprior):
        def __init__(self) -> None:
            super().__init__(channels=64)
            n, m = 64, 96
            self.gdn_a = nn.Sequential(conv(3, n), GDN(n), conv(n, m))
            self.gdn_s = nn.Sequential(deconv(m, n), GDN(n, inverse=True), deconv(n, 3))
            self.h_a[0] = conv(m, 64, stride=1, kernel_size=3)
            self.h_s[-1] = conv(64 * 3 // 2, 2 * m, stride=1, kernel_size=3)
            del self.analysis, self.synthesis, self.post_filter

        def g_a(self, x):
            return self.gdn_a(x)

        def g_s(self, y_hat):
            return self.gdn_s(y_hat)

    return GDNHyperprior()


def train_coder(coder: nn.Module, crops, iterations: int, lam: float, label: str,
                every: int = 50) -> list[dict[str, float]]:
    """CompressAI-style coder-only training; the mean rate and PSNR of each ``every`` iterations."""
    aux = [p for n, p in coder.named_parameters() if n.endswith("quantiles")]
    main = [p for n, p in coder.named_parameters() if not n.endswith("quantiles")]
    optimizer, aux_optimizer = torch.optim.Adam(main, lr=5e-4), torch.optim.Adam(aux, lr=1e-3)
    rows, window, start = [], [], time.perf_counter()
    for i in range(1, iterations + 1):
        x = torch.round(crops.batch(8) * 255) / 255
        x_hat, likelihoods = coder(x)
        bpp = sum(-torch.log2(v).sum() for v in likelihoods.values()) / (x.shape[0] * x.shape[2] * x.shape[3])
        mse = ((x_hat - x) ** 2).mean()
        optimizer.zero_grad()
        (bpp + lam * 255**2 * mse).backward()
        optimizer.step()
        aux_optimizer.zero_grad()
        coder.aux_loss().backward()
        aux_optimizer.step()
        window.append((bpp.item(), 10 * math.log10(1 / max(mse.item(), 1e-12))))
        if i % every == 0:
            row = {"coder": label, "iteration": i, "bpp": sum(b for b, _ in window) / len(window),
                   "psnr": sum(p for _, p in window) / len(window), "seconds": time.perf_counter() - start}
            click.echo(f"{label} {i}: {row['bpp']:.3f} bpp, {row['psnr']:.2f} dB ({row['seconds']:.0f} s)")
            rows.append(row)
            window = []
    return rows


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--train-dir", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_TRAIN,
              show_default="../shared/datasets/train", help="Folder of training photos.")
@click.option("--iterations", type=click.IntRange(min=50), default=300, show_default=True)
@click.option("--lmbda", type=float, default=0.01, show_default=True, help="Weight of 255^2 * MSE.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch.set_num_threads.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_OUT,
              show_default="benchmarks/results", help="Output folder.")
def main(train_dir: Path, iterations: int, lmbda: float, threads: int | None, out: Path) -> None:
    """Rate and PSNR of the DCT-started and the GDN coder over a short coder-only training."""
    from irncodec.data import RandomCrops
    from irncodec.models.lr_coder import LRHyperprior

    if threads:
        torch.set_num_threads(threads)
    rows = []
    for label, make in (("dct", LRHyperprior), ("gdn", gdn_coder)):
        torch.manual_seed(0)
        crops = RandomCrops([str(train_dir)], 48, seed=0)
        rows += train_coder(make(), crops, iterations, lmbda, label)
    lines = [f"# Coder-only training from scratch ({iterations} iterations, batch 8, 48 px crops, "
             f"lambda {lmbda})", "", "`python benchmarks/coder_init.py`; rate and PSNR are means over "
             "the preceding 50 training batches.", "",
             "| coder | iteration | bpp | PSNR (dB) | seconds |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['coder']} | {r['iteration']} | {r['bpp']:.3f} | {r['psnr']:.2f} | {r['seconds']:.0f} |"
              for r in rows]
    out.mkdir(parents=True, exist_ok=True)
    (out / "coder_init.md").write_text("\n".join(lines) + "\n")
    click.echo(f"wrote {out}/coder_init.md")


if __name__ == "__main__":
    main()
