#!/usr/bin/env python
"""BD tables again from saved RD summaries, without measuring anything.

    python benchmarks/bd_report.py benchmarks/results/rd_x2/rd_summary.json
    python benchmarks/bd_report.py benchmarks/results/rd_scales/x*/rd_summary.json --out benchmarks/results/rd_scales

Reads ``rd_summary.json`` (written by ``rd_curve.py``), adds the irncodec
envelope if the run predates it, and rewrites ``bd_rate.md`` beside it (or in
``--out``): BD over wherever curves overlap, then over ``--bd-range``; with
``--plot``, the RD plot too. Several summaries of runs on the same images (one
run per scale, say) are merged first: one envelope over all their series, and
the merged ``rd_summary.json`` is written to ``--out``.
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
from benchmarks.rd.report import bd_report, draw, merge_summaries


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("summaries", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bd-range", default=f"{DEFAULT_BD_RANGE[0]},{DEFAULT_BD_RANGE[1]}", show_default=True,
              callback=bd_range_option, help="LO,HI bpp window of the windowed BD table.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for bd_rate.md [default: the summary's folder; needed for several].")
@click.option("--plot", is_flag=True, help="Redraw rd_curve.png too.")
def main(summaries: tuple[Path, ...], bd_range: tuple[float, float], out: Path | None, plot: bool) -> None:
    """Rewrite bd_rate.md (and with --plot rd_curve.png) from SUMMARIES (rd_summary.json files)."""
    if len(summaries) > 1 and out is None:
        raise click.UsageError("merging several summaries needs --out FOLDER for the merged one")
    loaded = []
    for path in summaries:
        try:
            loaded.append(json.loads(path.read_text()))
        except (ValueError, UnicodeDecodeError) as exc:
            raise click.ClickException(f"{path}: not JSON ({exc})") from None
    try:
        data = merge_summaries(loaded)
    except (KeyError, TypeError, AttributeError) as exc:
        raise click.ClickException(f"not an rd_summary.json written by rd_curve.py ({exc!r})") from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    header, tables = bd_report(data["methods"], data["meta"], bd_range)
    folder = out or summaries[0].parent
    folder.mkdir(parents=True, exist_ok=True)
    if len(summaries) > 1:
        data["meta"]["merged_from"] = [str(path) for path in summaries]
        data["meta"]["bd_range"] = list(bd_range)
        (folder / "rd_summary.json").write_text(json.dumps(data, indent=2) + "\n")
    (folder / "bd_rate.md").write_text(header + tables)
    if plot:
        methods = data["methods"]  # the envelope is already in (merge_summaries draws it)
        with_dists = any("dists" in p for curve in methods.values() for p in curve["points"])
        draw(folder / "rd_curve.png", methods, data["meta"], with_dists,
             kodak=str(data["meta"].get("dataset_name", "")).lower() == "kodak")
    click.echo(tables)


if __name__ == "__main__":
    main()
