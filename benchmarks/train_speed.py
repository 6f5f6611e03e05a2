#!/usr/bin/env python
"""What makes a training step faster on this machine: threads, bf16, channels-last, torch.compile.

    python benchmarks/train_speed.py --config configs/irn_x2_small.yaml --steps 10

Times ``--steps`` training steps (after two warm-up steps) of one training
config under each variant of its speed options, in a fresh process per variant
so that thread settings and compiled code do not leak between them, and
writes ``train_speed.md`` to ``--out``. ``--variants`` picks a subset
(names below). torch.compile's one-off compile time is reported apart from
its step time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import click

if not __package__:  # run as a script: the repository root, where the benchmarks package is, goes on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DEFAULT_OUT, REPO

#: name -> (threads, training-config overrides, compile the loss module)
VARIANTS: dict[str, tuple[int, dict, bool]] = {
    "fp32, 1 thread": (1, {}, False),
    "fp32": (2, {}, False),
    "fp32, channels-last": (2, {"channels_last": True}, False),
    "bf16": (2, {"precision": "bf16"}, False),
    "bf16, channels-last": (2, {"precision": "bf16", "channels_last": True}, False),
    "fp32, torch.compile": (2, {}, True),
}


def time_variant(config: str, threads: int, overrides: dict, compiled: bool, steps: int) -> dict:
    """Seconds per step of one variant (run in this process)."""
    import tempfile

    import torch

    from irncodec.train import TrainConfig, Trainer

    torch.set_num_threads(threads)
    cfg = TrainConfig.from_yaml(config, {**overrides, "threads": threads, "device": "cpu"})
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, run_dir)
        compile_s = 0.0
        if compiled:
            trainer.losses = torch.compile(trainer.losses)
            start = time.perf_counter()
            trainer.step()
            compile_s = time.perf_counter() - start
        for _ in range(2):
            trainer.step()
        start = time.perf_counter()
        for _ in range(steps):
            trainer.step()
        return {"s_per_step": (time.perf_counter() - start) / steps, "compile_s": compile_s}


@click.command()
@click.option("--config", default=str(REPO / "configs" / "irn_x2_small.yaml"), show_default=True,
              type=click.Path(exists=True, dir_okay=False))
@click.option("--steps", default=10, show_default=True, type=int)
@click.option("--variants", "names", multiple=True, type=click.Choice(list(VARIANTS)),
              help="Variants to time (repeat); default all.")
@click.option("--out", default=str(DEFAULT_OUT), show_default=True, type=click.Path(file_okay=False))
@click.option("--_one", hidden=True, default=None)
def main(config: str, steps: int, names: tuple[str, ...], out: str, _one: str | None) -> None:
    if _one is not None:
        threads, overrides, compiled = VARIANTS[_one]
        print(json.dumps(time_variant(config, threads, overrides, compiled, steps)))
        return
    rows = []
    for name in names or VARIANTS:
        proc = subprocess.run([sys.executable, __file__, "--config", config, "--steps", str(steps), "--_one", name],
                              capture_output=True, text=True)
        if proc.returncode:
            last = (proc.stderr.strip().splitlines() or ["?"])[-1]
            click.echo(f"{name}: failed: {last}", err=True)
            rows.append((name, None, None))
            continue
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append((name, result["s_per_step"], result["compile_s"]))
        click.echo(f"{name}: {result['s_per_step'] * 1000:.0f} ms/step")
    base = next((r[1] for r in rows if r[0] == "fp32" and r[1]), None)
    lines = [f"Training step time, `{Path(config).name}`, {steps} steps after 2 warm-up steps, CPU "
             f"({_cpu_name()}); `python benchmarks/train_speed.py --config {Path(config).name}`.", "",
             "| variant | ms / step | speed vs fp32 (2 threads) | one-off compile s |",
             "| --- | ---: | ---: | ---: |"]
    for name, s, c in rows:
        if s is None:
            lines.append(f"| {name} | failed | | |")
        else:
            speed = f"{base / s:.2f}x" if base else ""
            lines.append(f"| {name} | {s * 1000:.0f} | {speed} | {c:.0f} |" if c else
                         f"| {name} | {s * 1000:.0f} | {speed} | |")
    Path(out).mkdir(parents=True, exist_ok=True)
    target = Path(out) / f"train_speed_{Path(config).stem}.md"
    target.write_text("\n".join(lines) + "\n")
    click.echo(f"wrote {target}")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
