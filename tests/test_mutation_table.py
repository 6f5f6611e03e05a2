"""tests/mutation/table.py: the per-module counts of a mutmut run."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

TABLE = Path(__file__).parent / "mutation" / "table.py"


@pytest.fixture
def table(monkeypatch):
    spec = importlib.util.spec_from_file_location("mutation_table", TABLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "listed_mutants", lambda: {"irncodec.a.x_f__mutmut_3": "equivalent"})
    return module


def test_counts_each_outcome_and_the_share_detected(table, monkeypatch, tmp_path, capsys):
    results = "\n".join([
        "    irncodec.a.x_f__mutmut_1: killed", "    irncodec.a.x_f__mutmut_2: segfault",
        "    irncodec.a.x_f__mutmut_3: survived", "    irncodec.a.x_f__mutmut_4: survived",
        "    irncodec.a.x_f__mutmut_5: survived", "    irncodec.b.x_g__mutmut_1: not checked",
    ])
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, results, ""))
    later = tmp_path / "later.txt"
    later.write_text("# a comment\nirncodec.a.x_f__mutmut_4\n")
    monkeypatch.setattr(sys, "argv", ["table.py", "--killed-by", str(later)])
    assert table.main() == 0
    rows = {line.split(" | ")[0]: line for line in capsys.readouterr().out.splitlines()}
    # killed, type check, timeout, segfault, killed later, survived, no tests, equivalent, GPU, not checked
    assert rows["| irncodec.a"] == "| irncodec.a | 5 | 1 | 0 | 0 | 1 | 1 | 1 | 0 | 1 | 0 | 0 | 75.0 % |"
    assert rows["| all"] == "| all | 6 | 1 | 0 | 0 | 1 | 1 | 1 | 0 | 1 | 0 | 1 | 75.0 % |"
