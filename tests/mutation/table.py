#!/usr/bin/env python
"""Per-module table of a mutmut run: ``python tests/mutation/table.py`` after ``mutmut run``.

Reads ``mutmut results --all true`` (run from the repository root) and prints, for
each mutated module, how many mutants each outcome had, and the share detected
(killed by a test, caught by mypy, or timed out) of those checked and not equivalent.
Mutants listed in ``tests/mutation/equivalent.md`` are counted apart: equivalent ones
(programs that behave identically) and those only a GPU test kills (under a heading
naming the GPU), which a CPU-only run cannot see. A listed name that is no surviving mutant (a source
change renumbers a function's mutants) is reported, and the exit status is then 1.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

OUTCOMES = ("killed", "caught by type check", "timeout", "survived", "no tests", "not checked")
DETECTED = ("killed", "caught by type check", "timeout")
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
        if status in ("survived", "no tests") and name in listed:
            status = listed[name]
        counts[module_of(name)][status] += 1
    print("| module | mutants | " + " | ".join(OUTCOMES[:-1]) + " | equivalent | GPU only | not checked | detected |")
    print("| --- |" + " ---: |" * (len(OUTCOMES) + 4))
    for module, c in sorted(counts.items()):
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
