#!/usr/bin/env bash
# Builds what the GPU campaign carries, in .campaign/ (git-ignored, about 30 MB):
#   .campaign/wheels  FrEIA, CompressAI, pytorch-msssim for the GPU machine's
#                     Python 3.12 (everything else is installed there), each
#                     download checked against campaign/wheels.sha256;
#   .campaign/data    the training-data pack (python -m irncodec.campaign pack).
# Usage: bash campaign/prepare.sh [DATASETS_DIR]   (default ../shared/datasets)
#        BUDGET_MB=32 bash campaign/prepare.sh      (a pack of another size)
# By default the pack fills what the 64 MiB the GPU machine takes leaves beside
# the tracked tree (the shipped weights grow it) and the wheels, less 2 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
datasets=${1:-../shared/datasets}
dl=$(mktemp -d)
trap 'rm -rf "$dl"' EXIT
py312=(--python-version 3.12 --implementation cp --only-binary=:all:
       --platform manylinux_2_34_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
python -m pip download -q --no-deps "${py312[@]}" -d "$dl" compressai==1.2.8 pytorch-msssim==1.0.0
python -m pip download -q --no-deps --no-binary=:all: -d "$dl" FrEIA==0.2
(cd "$dl" && sha256sum -c "$OLDPWD/campaign/wheels.sha256")
rm -rf .campaign/wheels && mkdir -p .campaign/wheels
cp "$dl"/*.whl .campaign/wheels/
python -m pip wheel -q --no-deps --no-build-isolation -w .campaign/wheels "$dl"/FrEIA-0.2.tar.gz
tree_bytes=$(git ls-files -z | xargs -0 stat -c %s | awk '{s += $1} END {print s}')
budget=${BUDGET_MB:-$(( (64 * 1048576 - tree_bytes - $(du -sb .campaign/wheels | cut -f1)) / 1000000 - 2 ))}
echo "tracked tree $(( tree_bytes / 1000000 )) MB; data pack budget ${budget} MB"
python -m irncodec.campaign pack "$datasets/train" .campaign/data --val "$datasets/kodak" --budget-mb "$budget"
du -sh .campaign
