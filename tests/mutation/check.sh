#!/usr/bin/env bash
# Check named mutants against chosen tests, without a whole `mutmut run`:
#   tests/mutation/check.sh "tests/test_tiling.py -k margin" irncodec.tiling.x_upscale_tiled__mutmut_6 ...
# Copies mutmut's mutated tree (mutants/, from a `mutmut run`) once to $MUTDIR, puts the
# current tests/ over it, and runs the tests with each mutant switched on. Prints
# "killed" (a test failed, or the import failed) or "SURVIVED" per mutant.
set -u
repo=$(cd "$(dirname "$0")/../.." && pwd)
MUTDIR=${MUTDIR:-${TMPDIR:-/tmp}/irncodec-mutcheck}
export IRNCODEC_DATASETS=${IRNCODEC_DATASETS:-$repo/../shared/datasets}
[ -d "$repo/mutants/irncodec" ] || { echo "no mutants/: run 'mutmut run' first" >&2; exit 2; }
if [ ! -d "$MUTDIR/irncodec" ]; then
  mkdir -p "$MUTDIR" && cp -a "$repo/mutants/." "$MUTDIR/" && find "$MUTDIR" -name '*.meta' -delete
fi
rm -rf "$MUTDIR/tests" && cp -a "$repo/tests" "$MUTDIR/tests"
args=$1; shift
cd "$MUTDIR" || exit 2
MUTANT_UNDER_TEST= eval timeout 300 python -m pytest -x -q -p no:cacheprovider "$args" >/dev/null 2>&1 \
  || { echo "the tests fail (or do not run) without a mutant: fix the arguments or the tests first" >&2; exit 2; }
for m in "$@"; do
  MUTANT_UNDER_TEST=$m eval timeout 300 python -m pytest -x -q -p no:cacheprovider "$args" >/dev/null 2>&1
  case $? in
    0) echo "SURVIVED $m" ;;
    5) echo "no tests $m" ;;
    *) echo "killed   $m" ;;
  esac
done
