"""A run's output files: ``rd_points.csv``, ``rd_summary.json``, ``rd_curve.png`` and
``bd_rate.md``, and the markdown tables (mean points, BD) that are also printed."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .bd import BD_ANCHORS, DEFAULT_BD_RANGE, ENVELOPE, RANGE_ANCHORS, bd_table, range_table, with_envelope
from .plots import load_published, plot_curves
from .rows import COLUMNS, summarize

# --- markdown ------------------------------------------------------------------

def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None or not math.isfinite(value) else format(value, spec)


def bd_markdown(psnr_rows: Sequence[dict[str, Any]], msssim_rows: Sequence[dict[str, Any]]) -> str:
    """The BD table as markdown: negative BD-rate / positive BD-PSNR mean the test curve is better."""
    lines = [
        "| test | anchor | BD-rate PSNR (%) | BD-PSNR (dB) | BD-rate MS-SSIM (%) | note |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for p, m in zip(psnr_rows, msssim_rows):
        notes = [n for n in (p["rate_note"], p["metric_note"]) if n]
        notes += [f"MS-SSIM: {m['rate_note']}"] if m["rate_note"] and m["rate_note"] not in notes else []
        note = "; ".join(dict.fromkeys(notes))
        lines.append(f"| {p['test']} | {p['anchor']} | {_fmt(p['bd_rate'], '+.1f')} | "
                     f"{_fmt(p['bd_metric'], '+.2f')} | {_fmt(m['bd_rate'], '+.1f')} | {note} |")
    return "\n".join(lines) + "\n"


def range_markdown(rows: Sequence[dict[str, Any]], envelope_curve: dict[str, Any] | None,
                   lo: float, hi: float) -> str:
    """The --bd-range tables: BD against each anchor, then the envelope's points."""
    with_dists = any("dists" in r for r in rows)
    dists_names = " BD-rate DISTS (%) | BD-DISTS |" if with_dists else ""
    lines = [f"## Over {lo:g}-{hi:g} bpp (PCHIP, window clipped to where both curves have points)\n",
             f"| test | anchor | BD-rate PSNR (%) | BD-PSNR (dB) |{dists_names} compared over (bpp) | note |",
             "| --- | --- | ---: | ---: |" + (" ---: | ---: |" if with_dists else "") + " --- | --- |"]
    for r in rows:
        span = "—" if r["span"] is None else f"{r['span'][0]:.3f}-{r['span'][1]:.3f}"
        note = r["note"]
        dists_cells = ""
        if with_dists:
            d = r.get("dists") or {"bd_rate": None, "bd_metric": None, "note": ""}
            dists_cells = f" {_fmt(d['bd_rate'], '+.1f')} | {_fmt(d['bd_metric'], '+.4f')} |"
            if d["note"]:
                note = "; ".join(n for n in (note, f"DISTS: {d['note']}") if n)
        lines.append(f"| {r['test']} | {r['anchor']} | {_fmt(r['bd_rate'], '+.1f')} | "
                     f"{_fmt(r['bd_metric'], '+.2f')} |{dists_cells} {span} | {note} |")
    if envelope_curve:
        lines += ["", f"### {ENVELOPE}: the best series at each rate", "",
                  "| bpp | PSNR | series | quality |", "| ---: | ---: | --- | ---: |"]
        for p in envelope_curve["points"]:
            quality = "" if p.get("quality") is None else str(p["quality"])
            lines.append(f"| {p['bpp']:.3f} | {p['psnr']:.2f} | {p['series']} | {quality} |")
    return "\n".join(lines) + "\n"


def summary_markdown(means: Sequence[dict[str, Any]], with_dists: bool) -> str:
    """Mean points as a markdown table, one row per method and quality."""
    names = ["method", "q", "bpp", "PSNR", "SSIM", "MS-SSIM"] + (["DISTS"] if with_dists else []) \
        + ["Y-PSNR", "enc s", "dec s"]
    lines = ["| " + " | ".join(names) + " |", "|" + " --- |" * len(names)]
    for r in sorted(means, key=lambda r: (r["method"], r["bpp"])):
        cells = [r["method"], "" if r["quality"] is None else str(r["quality"]), _fmt(r["bpp"], ".3f"),
                 _fmt(r["psnr"], ".2f"), _fmt(r["ssim"], ".4f"), _fmt(r["ms_ssim"], ".4f")]
        if with_dists:
            cells.append(_fmt(r.get("dists"), ".4f"))
        cells += [_fmt(r["y_psnr"], ".2f"), _fmt(r["encode_s"], ".3f"), _fmt(r["decode_s"], ".3f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# --- files ---------------------------------------------------------------------

def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})


def _json_safe(value: Any) -> Any:
    """NaN/inf become null so the JSON is standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write_outputs(out: Path, rows: list[dict[str, Any]], means: list[dict[str, Any]],
                  meta: dict[str, Any], with_dists: bool, dataset: Path,
                  bd_range: tuple[float, float] = DEFAULT_BD_RANGE) -> str:
    """All four output files; returns the BD markdown."""
    out.mkdir(parents=True, exist_ok=True)
    columns = [c for c in COLUMNS if with_dists or c != "dists"]
    write_csv(out / "rd_points.csv", rows + means, columns)
    summary = with_envelope(summarize(means))
    with open(out / "rd_summary.json", "w") as f:
        json.dump(_json_safe({"meta": meta, "methods": summary}), f, indent=2)
        f.write("\n")
    draw(out / "rd_curve.png", summary, meta, with_dists, kodak=dataset.resolve().name == "kodak")
    header, bd_md = bd_report(summary, meta, bd_range)
    (out / "bd_rate.md").write_text(header + bd_md)
    return bd_md


def draw(path: Path, summary: dict[str, dict[str, Any]], meta: dict[str, Any], with_dists: bool,
         kodak: bool) -> None:
    """The RD plot of a run; on Kodak with the published series beside it."""
    keys = ["psnr", "ms_ssim"] + (["dists"] if with_dists else [])
    published = load_published() if kodak else {}
    title = f"{meta['dataset_name']}, {len(meta['images'])} images, mean per image" + (
        "; published series: all 24 Kodak images (CompressAI results)" if published else "")
    plot_curves(summary, path, keys, published, title)


def merge_summaries(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One summary from runs on the same images (e.g. one run per scale), so their curves
    share one envelope, one BD table and one plot. A series measured in two runs must have
    the same points in both; runs on other images are refused."""
    if not summaries:
        raise ValueError("no summaries to merge")
    first = summaries[0]["meta"]
    methods: dict[str, Any] = {}
    models: dict[str, Any] = {}
    notes: list[str] = []
    qualities: set[int] = set()
    for i, summary in enumerate(summaries):
        meta = summary["meta"]
        if (meta.get("dataset_name"), meta.get("images")) != (first.get("dataset_name"), first.get("images")):
            raise ValueError(f"summary {i + 1} was measured on other images ({meta.get('dataset_name')}, "
                             f"{len(meta.get('images', []))} images) than summary 1 "
                             f"({first.get('dataset_name')}, {len(first.get('images', []))} images)")
        for name, curve in summary["methods"].items():
            if name == ENVELOPE:
                continue  # drawn again over all the series
            if name in methods and methods[name] != curve:
                raise ValueError(f"series '{name}' has other points in summary {i + 1} than in an earlier one")
            methods[name] = curve
        models.update(meta.get("models", {}))
        notes += [n for n in meta.get("notes", []) if n not in notes]
        qualities.update(meta.get("qualities", []))
    meta = {**first, "models": models, "notes": notes, "qualities": sorted(qualities),
            "dists": all(s["meta"].get("dists", False) for s in summaries)}
    return {"meta": meta, "methods": with_envelope(methods)}


def bd_report(summary: dict[str, dict[str, Any]], meta: dict[str, Any],
              bd_range: tuple[float, float] = DEFAULT_BD_RANGE) -> tuple[str, str]:
    """(header, tables) of ``bd_rate.md`` for measured curves: whole-overlap BD, then the windowed one."""
    summary = with_envelope(summary)
    if any(anchor in summary for anchor in BD_ANCHORS):
        bd_md = bd_markdown(bd_table(summary, key="psnr"), bd_table(summary, key="ms_ssim"))
    else:
        bd_md = f"No BD-rate: its anchors ({', '.join(BD_ANCHORS)}) were not measured (--no-baselines).\n"
    if any(anchor in summary for anchor in RANGE_ANCHORS):
        bd_md += "\n" + range_markdown(range_table(summary, *bd_range), summary.get(ENVELOPE), *bd_range)
    header = (f"# BD-rate of rescaling curves ({meta['dataset_name']}, {len(meta['images'])} images)\n\n"
              "Akima interpolation (bjontegaard) over wherever two curves overlap; negative BD-rate = "
              "fewer bits for the same quality.\n\n")
    return header, bd_md
