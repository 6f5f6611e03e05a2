#!/usr/bin/env bash
# The GPU campaign's exact command, run on this CPU for a few iterations, in a
# Python 3.12 virtual environment shaped like the GPU machine's (torch 2.11,
# numpy 2, the packages its image has that irncodec's imports reach) plus only
# the wheels campaign/prepare.sh put in .campaign/wheels.
# Usage: bash campaign/dry_run.sh [VENV_DIR]   (default ../venv312; about 10 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-../venv312}
# the first Python 3.12 that runs (a pyenv shim may exist without 3.12 selected)
py312=${PYTHON312:-}
if [ -z "$py312" ]; then
    for candidate in python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python; do
        if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
            py312=$candidate
            break
        fi
    done
fi
[ -n "$py312" ] || { echo "no Python 3.12 here: set PYTHON312 to one" >&2; exit 2; }
if [ ! -x "$venv/bin/python" ]; then
    "$py312" -m venv "$venv"
fi
PIP_CONSTRAINT= "$venv/bin/python" -m pip install -q torch==2.11.0 torchvision==0.26.0 "numpy>=2,<3" \
    pillow safetensors pyyaml click tqdm scipy requests pandas einops torch-geometric
out=$(mktemp -d)
# Four paper-size runs at batch 16 take about 32 GB together: two at a time here.
PYTHON="$venv/bin/python" OUT="$out/out" bash campaign/fire.sh --iterations 2 --minutes 12 --parallel 2 \
    --work-dir "$out/work"
ls -l "$out/out"
