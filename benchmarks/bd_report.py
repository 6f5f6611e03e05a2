#!/usr/bin/env python
"""BD tables again from a saved RD summary, without measuring anything.

    python benchmarks/bd_report.py benchmarks/results/rd_x2/rd_summary.json

Reads ``rd_summary.json`` (written by ``rd_curve.py``), adds the irncodec
envelope if the run predates it, and rewrites ``bd_rate.md`` beside it (or in
``--out``): BD over wherever curves overlap, then over ``--bd-range``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

if not __package__:  # run as a script: the repository root, where the benchmarks package is, goes on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rd.bd import DEFAULT_BD_RANGE
from benchmarks.rd.cli import bd_range_option
from benchmarks.rd.report import bd_report


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("summary", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bd-range", default=f"{DEFAULT_BD_RANGE[0]},{DEFAULT_BD_RANGE[1]}", show_default=True,
              callback=bd_range_option, help="LO,HI bpp window of the windowed BD table.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for bd_rate.md [default: the summary's folder].")
def main(summary: Path, bd_range: tuple[float, float], out: Path | None) -> None:
    """Rewrite bd_rate.md from SUMMARY (an rd_summary.json)."""
    data = json.loads(summary.read_text())
    header, tables = bd_report(data["methods"], data["meta"], bd_range)
    folder = out or summary.parent
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bd_rate.md").write_text(header + tables)
    click.echo(tables)


if __name__ == "__main__":
    main()
