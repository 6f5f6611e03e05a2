#!/usr/bin/env bash
# The lent-GPU training campaign as one command, run from the repository root on
# the GPU machine (which is offline: campaign/prepare.sh has put the wheels and
# the data pack in .campaign/, which travels with the tree). Weights and logs go
# to $OUT. Extra arguments go to `python -m irncodec.campaign run`, e.g.
# `--iterations 3 --minutes 3` for a dry run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
site=$(mktemp -d)
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .campaign/wheels/*.whl
export PYTHONPATH="$site:$PWD" PYTHONUNBUFFERED=1
OUT=${OUT:-runs/campaign-out}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv || true
"$PY" campaign/gpu_checks.py "$OUT" || echo "gpu_checks: MISMATCH (see $OUT/gpu_checks.json)" >&2
exec "$PY" -m irncodec.campaign run campaign/gpu.yaml --out "$OUT" --minutes "${MINUTES:-8.5}" "$@"
