#!/usr/bin/env python
"""Per-module table of a mutmut run: ``python tests/mutation/table.py`` after ``mutmut run``.

Reads ``mutmut results --all true`` (run from the repository root) and prints, for
each mutated module, how many mutants each outcome had, and the share detected
(killed by a test, caught by mypy, timed out, or crashed) of those checked and not equivalent.
Mutants listed in ``tests/mutation/equivalent.md`` are counted apart: equivalent ones
(programs that behave identically) and those only a GPU test kills (under a heading
naming the GPU), which a CPU-only run cannot see. A listed name that is no surviving mutant (a source
change renumbers a function's mutants) is reported, and the exit status is then 1.

``--killed-by FILE`` (repeatable) names files of mutant names, one per line, that tests
written after the run kill (checked with ``tests/mutation/check.sh``): survivors among
them count as "killed by new tests", until ``mutmut run NAME...`` records them.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

OUTCOMES = ("killed", "caught by type check", "timeout", "segfault", "killed by new tests", "survived",
            "no tests", "not checked")
#: A mutant that crashes the test process is caught as surely as one that fails a test.
DETECTED = ("killed", "caught by type check", "timeout", "segfault", "killed by new tests")
EQUIVALENT = Path(__file__).with_name("equivalent.md")


def module_of(mutant: str) -> str:
    return re.split(r"\.x[_ǁ]", mutant, maxsplit=1)[0]


def listed_mutants() -> dict[str, str]:
    """Names in equivalent.md: 'GPU only' under a heading naming a GPU, else 'equivalent'."""
    listed, kind = {}, "equivalent"
    for line in EQUIVALENT.read_text().splitlines() if EQUIVALENT.exists() else []:
        if line.startswith("#"):
            kind = "GPU only" if re.search(r"GPU|CUDA", line) else "equivalent"
        for name in re.findall(r"`(irncodec\.[^`]+__mutmut_\d+)`", line):
            listed[name] = kind
    return listed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--killed-by", action="append", default=[], type=Path, metavar="FILE",
                        help="names of survivors that tests written since the run kill")
    args = parser.parse_args()
    killed_later = {line.strip() for path in args.killed_by for line in path.read_text().splitlines()
                    if line.strip() and not line.startswith("#")}
    out = subprocess.run(["mutmut", "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    listed = listed_mutants()
    counts: dict[str, Counter] = defaultdict(Counter)
    stale = set(listed)  # listed names that are no surviving mutant (renumbered by a source change?)
    for line in out.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if not name:
            continue
        if status in ("survived", "no tests", "not checked"):
            stale.discard(name)
        if status in ("survived", "no tests"):
            if name in killed_later:
                status = "killed by new tests"
            elif name in listed:
                status = listed[name]
        counts[module_of(name)][status] += 1
        counts["all"][status] += 1
    print("| module | mutants | " + " | ".join(OUTCOMES[:-1]) + " | equivalent | GPU only | not checked | detected |")
    print("| --- |" + " ---: |" * (len(OUTCOMES) + 4))
    for module, c in sorted(counts.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        checked = sum(c.values()) - c["not checked"]
        detected = sum(c[k] for k in DETECTED)
        share = f"{100 * detected / (checked - c['equivalent']):.1f} %" if checked > c["equivalent"] else "-"
        cells = [c[k] for k in OUTCOMES[:-1]] + [c["equivalent"], c["GPU only"], c["not checked"]]
        print(f"| {module} | {sum(c.values())} | " + " | ".join(map(str, cells)) + f" | {share} |")
    for name in sorted(stale):
        print(f"listed in {EQUIVALENT.name} but not a surviving mutant: {name}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
