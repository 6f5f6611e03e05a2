"""Checks that need a GPU, run by fire.sh before the campaign (a few seconds).

Every conformance-corpus file coded by an integer (``-exact``) entropy model must
decode to the same LR image on the GPU as on the CPU, bit for bit
(docs/format.md: files that decode the same everywhere). Writes
``gpu_checks.json`` to the output folder; exits non-zero on a mismatch.

    python campaign/gpu_checks.py OUT_DIR
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path

import torch

from irncodec import container, zoo

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "conformance"


def lr_digest(lr: torch.Tensor) -> str:
    return hashlib.sha256(lr.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def main(out: Path) -> int:
    if not torch.cuda.is_available():
        print("gpu_checks: no GPU, nothing checked", file=sys.stderr)
        return 0
    results, coders = {}, {}
    for path in sorted(CORPUS.glob("*.irn")):
        irn = container.unpack(path.read_bytes())
        h = irn.header
        if h.codec != "entropy" or not h.model.endswith("-exact"):
            continue
        if h.model not in coders:
            coder = zoo.load_model(h.model).lr_coder
            coders[h.model] = (coder, copy.deepcopy(coder).cuda())
        on_cpu, on_gpu = coders[h.model]
        with torch.no_grad():
            cpu = lr_digest(on_cpu.decompress(irn.payload, (h.lr_height, h.lr_width)))
            gpu = lr_digest(on_gpu.decompress(irn.payload, (h.lr_height, h.lr_width)))
        results[path.name] = {"model": h.model, "identical": cpu == gpu}
    summary = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
               "files": len(results), "identical": sum(r["identical"] for r in results.values()),
               "results": results}
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_checks.json").write_text(json.dumps(summary, indent=1))
    print(f"gpu_checks: {summary['identical']} of {summary['files']} exact-coder LR images identical on "
          f"{summary['device']}", file=sys.stderr)
    return 0 if summary["identical"] == summary["files"] else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/gpu-checks")))
