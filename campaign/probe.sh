#!/usr/bin/env bash
# Runs campaign/probe_batch.py on the GPU machine with the carried wheels (see fire.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
site=$(mktemp -d)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .campaign/wheels/*.whl
export PYTHONPATH="$site:$PWD" PYTHONUNBUFFERED=1
BATCHES=${BATCHES:-16,64} python3 campaign/probe_batch.py "${1:-170}"
