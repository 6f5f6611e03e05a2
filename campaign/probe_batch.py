"""Seconds per training step of the paper-size configs alone, at batch 16 and 64,
with the CPU cost of the crops and the peak GPU memory (a lent GPU's few minutes;
benchmarks/results/training/gpu_campaign_1/probe_batch.json is its output on an H100).

    bash campaign/probe.sh [SECONDS]   # on the GPU machine, .campaign carried; writes $OUT/probe_batch.json
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, os.getcwd())
from irncodec.train import TrainConfig, Trainer

CONFIGS = ["configs/campaign_irn_x2.yaml", "configs/campaign_sain_x2_jpeg.yaml", "configs/campaign_irn_x4_jpeg.yaml"]


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    out = Path(os.environ.get("OUT", "runs/probe_batch"))
    out.mkdir(parents=True, exist_ok=True)
    overrides = {"train_dirs": [os.path.abspath(".campaign/data/train")],
                 "val_dir": os.path.abspath(".campaign/data/val"), "device": "auto", "threads": 8}
    deadline = time.time() + (float(sys.argv[1]) if len(sys.argv) > 1 else 1e9)
    batches = [int(b) for b in os.environ.get("BATCHES", "16,64").split(",")]
    results = []
    for config_path in CONFIGS:
        for batch in batches:
            if time.time() > deadline:
                break
            trainer = Trainer(TrainConfig.from_yaml(config_path, {**overrides, "batch_size": batch}), out / "work")
            start = time.perf_counter()
            for _ in range(5):
                trainer.data.batch(batch)
            crop_s = (time.perf_counter() - start) / 5
            for _ in range(2):
                trainer.step()
            _sync()
            start = time.perf_counter()
            for _ in range(8):
                trainer.step()
            _sync()
            peak = torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else 0.0
            row = {"config": config_path, "batch": batch, "s_per_step": (time.perf_counter() - start) / 8,
                   "crop_s": crop_s, "mem_gb": peak}
            print(json.dumps(row), flush=True)
            results.append(row)
            del trainer
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
    (out / "probe_batch.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
