#!/usr/bin/env python
"""BD tables again from a saved RD summary, without measuring anything.

    python benchmarks/bd_report.py benchmarks/results/rd_x2/rd_summary.json

Reads ``rd_summary.json`` (written by ``rd_curve.py``), adds the irncodec
envelope if the run predates it, and rewrites ``bd_rate.md`` beside it (or in
``--out``): BD over wherever curves overlap, then over ``--bd-range``; with
``--plot``, the RD plot too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

if not __package__:  # run as a script: the repository root, where the benchmarks package is, goes on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.rd.bd import DEFAULT_BD_RANGE, with_envelope
from benchmarks.rd.cli import bd_range_option
from benchmarks.rd.report import bd_report, draw


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("summary", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bd-range", default=f"{DEFAULT_BD_RANGE[0]},{DEFAULT_BD_RANGE[1]}", show_default=True,
              callback=bd_range_option, help="LO,HI bpp window of the windowed BD table.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for bd_rate.md [default: the summary's folder].")
@click.option("--plot", is_flag=True, help="Redraw rd_curve.png too.")
def main(summary: Path, bd_range: tuple[float, float], out: Path | None, plot: bool) -> None:
    """Rewrite bd_rate.md (and with --plot rd_curve.png) from SUMMARY (an rd_summary.json)."""
    data = json.loads(summary.read_text())
    header, tables = bd_report(data["methods"], data["meta"], bd_range)
    folder = out or summary.parent
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bd_rate.md").write_text(header + tables)
    if plot:
        methods = with_envelope(data["methods"])
        with_dists = any("dists" in p for curve in methods.values() for p in curve["points"])
        draw(folder / "rd_curve.png", methods, data["meta"], with_dists,
             kodak=str(data["meta"].get("dataset_name", "")).lower() == "kodak")
    click.echo(tables)


if __name__ == "__main__":
    main()
