#!/usr/bin/env python
"""Rate-distortion benchmark: irncodec against Pillow codecs and plain bicubic rescaling.

    python benchmarks/rd_curve.py --qf 30..90              # Kodak, x2 and x4, JPEG, WebP and entropy LR
    python benchmarks/rd_curve.py --qf 50,90 --limit 2 --model my-x2.safetensors

The same command as ``python -m benchmarks.rd``; the harness is the
:mod:`benchmarks.rd` package, whose docstring says what is measured and how.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: benchmarks is a package there

from benchmarks.rd.cli import main

if __name__ == "__main__":
    main()
