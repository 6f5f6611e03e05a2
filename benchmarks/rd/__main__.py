"""``python -m benchmarks.rd``: the rate-distortion harness."""

from .cli import main

main()
