"""Benchmark harness: quality lists, rates, BD-rate, output schema, metrics, DISTS loading."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import irncodec
from benchmarks import bd_report, coder_init, get_kodak, speed
from benchmarks import compare_table as compare
from benchmarks import compression_aware as aware
from benchmarks.rd import bd, cli, measure, plots, report, settings
from benchmarks.rd import rows as rd_rows
from irncodec import metrics
from irncodec.tensors import image_to_tensor

from .conftest import photo_like

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def no_dists(tmp_path, monkeypatch):
    """An irncodec cache with nothing in it, so a user's DISTS weights are never used here."""
    monkeypatch.setenv(metrics.CACHE_ENV, str(tmp_path / "empty-cache"))


@pytest.fixture
def dataset(tmp_path) -> Path:
    """Two small photo-like PNGs."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(2):
        photo_like(64, 48, seed=i).save(folder / f"img{i}.png")
    return folder


# --- quality lists ---------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("30..90", [30, 40, 50, 60, 70, 80, 90]),
    ("30..90:20", [30, 50, 70, 90]),
    ("30,50,90", [30, 50, 90]),
    ("90, 30,50,30", [30, 50, 90]),
    ("75", [75]),
    ("0..100:50", [0, 50, 100]),
])
def test_parse_qualities(text, expected):
    assert settings.parse_qualities(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "30..", "..90", "90..30", "0..101", "-5", "30..90:0",
                                  "30..90:x", "30,,50", "101", "3.5"])
def test_parse_qualities_rejects(text):
    with pytest.raises(ValueError):
        settings.parse_qualities(text)


def test_bad_qf_is_a_click_error(tmp_path):
    result = CliRunner().invoke(cli.main, ["--qf", "90..30", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "backwards" in result.output and "--qf" in result.output


def test_entropy_codec_needs_a_model_with_a_coder(tmp_path, tiny_weights):
    result = CliRunner().invoke(cli.main, ["--codec", "entropy", "--model", tiny_weights[2],
                                          "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "has no entropy coder" in result.output


def test_harness_measures_the_entropy_path(tiny_entropy_weights, dataset, tmp_path, no_dists):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.main, [
        "--dataset", str(dataset), "--limit", "1", "--codec", "entropy", "--no-baselines",
        "--model", tiny_entropy_weights[2], "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    _, rows = _read_csv(out / "rd_points.csv")
    entropy = [r for r in rows if r["method"] == "irncodec-x2-entropy"]
    assert {r["quality"] for r in entropy} == {"2"}  # the default level for a --model
    assert all(float(r["bpp"]) > 0 and float(r["psnr"]) > 5 for r in entropy)


# --- rates -----------------------------------------------------------------------

def test_bits_per_pixel():
    assert rd_rows.bits_per_pixel(1000, 100, 80) == 1.0
    assert rd_rows.bits_per_pixel(3, 2, 3) == 4.0


def test_irncodec_rate_counts_the_whole_file(tiny_weights):
    img = photo_like(64, 48)
    coded = measure.measure_irncodec(img, 70, "jpeg", 2, model=tiny_weights[2])
    data = irncodec.encode(img, quality=70, codec="jpeg", scale=2, model=tiny_weights[2])
    assert coded.nbytes == len(data)
    assert coded.image.size == img.size
    setting = settings.Setting("irncodec-x2-jpeg", 2, "jpeg", 70, run=None)
    row = rd_rows.make_row(setting, "x", img, coded, {})
    assert row["bpp"] == pytest.approx(len(data) * 8 / (64 * 48))


def test_pillow_and_bicubic_rates_are_file_sizes():
    img = photo_like(64, 48)
    jpeg = measure.measure_pillow(img, "JPEG", 50, subsampling="4:2:0")
    assert jpeg.image.size == img.size and jpeg.nbytes > 0
    bicubic = measure.measure_bicubic(img, 2, "jpeg", 50)
    assert bicubic.image.size == img.size
    assert bicubic.nbytes < jpeg.nbytes  # a quarter of the pixels at the same quality


# --- BD-rate ---------------------------------------------------------------------

def _curve(rates, psnrs):
    return {"points": [{"bpp": r, "psnr": d} for r, d in zip(rates, psnrs)]}


def test_bd_rate_of_a_curve_needing_10_percent_fewer_bits():
    rates = [0.2, 0.4, 0.8, 1.6, 3.2]
    psnrs = [27.0, 30.5, 33.5, 36.0, 38.0]
    result = bd.bd_pair(_curve(rates, psnrs), _curve([0.9 * r for r in rates], psnrs))
    assert result["bd_rate"] == pytest.approx(-10.0, abs=1e-6)
    assert result["bd_metric"] > 0


def test_bd_pair_skips_short_and_disjoint_curves():
    anchor = _curve([0.2, 0.4, 0.8, 1.6], [27, 30, 33, 36])
    short = bd.bd_pair(anchor, _curve([0.2, 0.4, 0.8], [27, 30, 33]))
    assert short["bd_rate"] is None and "fewer than 4" in short["note"]
    far = bd.bd_pair(anchor, _curve([5, 6, 7, 8], [40, 41, 42, 43]))
    assert far["bd_rate"] is None and "no bpp overlap" in far["note"]


def test_bd_table_covers_every_rescaling_curve_and_anchor():
    summary = {m: _curve([0.2, 0.4, 0.8, 1.6], [27, 30, 33, 36])
               for m in ("jpeg-420", "webp", "irncodec-x2-jpeg", "irncodec-x2-png", "bicubic-x2-jpeg")}
    rows = bd.bd_table(summary)
    assert {(r["test"], r["anchor"]) for r in rows} == {
        (t, a) for t in ("irncodec-x2-jpeg", "bicubic-x2-jpeg") for a in ("jpeg-420", "webp")}
    assert all(r["bd_rate"] == pytest.approx(0, abs=1e-9) for r in rows)
    assert "| irncodec-x2-jpeg | jpeg-420 |" in report.bd_markdown(rows, rows)


def test_bd_table_compares_the_entropy_path_with_irncodecs_own_paths():
    summary = {m: _curve([0.2, 0.4, 0.8, 1.6], [27, 30, 33, 36])
               for m in ("jpeg-420", "webp", "irncodec-x2-jpeg", "irncodec-x2-webp", "irncodec-x2-entropy")}
    anchors = {r["anchor"] for r in bd.bd_table(summary) if r["test"] == "irncodec-x2-entropy"}
    assert anchors == {"jpeg-420", "webp", "irncodec-x2-jpeg", "irncodec-x2-webp"}


def test_envelope_keeps_the_best_point_at_each_rate_and_names_its_series():
    summary = {"irncodec-x2-jpeg": _curve([0.1, 0.2, 0.4], [25, 27, 28]),
               "irncodec-x4-jpeg": _curve([0.05, 0.15, 0.3], [24, 26.5, 27]),
               "jpeg-420": _curve([0.01, 1.0], [40, 50])}  # not irncodec: never in the envelope
    best = bd.envelope(summary)
    assert [(p["bpp"], p["psnr"], p["series"]) for p in best["points"]] == [
        (0.05, 24, "irncodec-x4-jpeg"), (0.1, 25, "irncodec-x2-jpeg"), (0.15, 26.5, "irncodec-x4-jpeg"),
        (0.2, 27, "irncodec-x2-jpeg"), (0.4, 28, "irncodec-x2-jpeg")]
    assert bd.envelope({"jpeg-420": summary["jpeg-420"]}) is None


def test_bd_in_range_measures_only_inside_the_window():
    rates = [0.05, 0.1, 0.2, 0.4, 0.8, 1.6]
    anchor = _curve(rates, [24, 26, 28, 30, 32, 34])  # 2 dB per doubling
    # Test: 10 % fewer bits at the same quality up to 0.5 bpp, far worse above it.
    test = _curve([0.9 * r for r in rates[:4]] + [0.8, 1.6], [24, 26, 28, 30, 25, 26])
    inside = bd.bd_in_range(anchor, test, 0.1, 0.36)
    assert inside["bd_rate"] == pytest.approx(-10.0, abs=0.01)
    assert inside["bd_metric"] == pytest.approx(2 * math.log2(1 / 0.9), abs=0.01)
    assert inside["span"] == pytest.approx((0.1, 0.36))
    assert bd.bd_pair(anchor, test)["bd_rate"] > 0  # the whole-range BD sees the bad high rates
    apart = bd.bd_in_range(anchor, _curve([2, 3], [35, 36]), 0.1, 0.5)
    assert apart["bd_rate"] is None and "no points" in apart["note"]


def test_dists_bd_counts_lower_as_better_and_shows_in_the_range_table():
    """DISTS falls as quality rises: a test needing 10 % fewer bits for the same DISTS has BD-rate
    -10 % and a negative BD-DISTS (the distance gap, test minus anchor)."""
    rates = [0.05, 0.1, 0.2, 0.4, 0.8]
    dists = [0.30, 0.25, 0.20, 0.15, 0.10]  # 0.05 less per doubling
    anchor = {"points": [{"bpp": r, "psnr": 20 + i, "dists": d} for i, (r, d) in enumerate(zip(rates, dists))]}
    test = {"points": [{"bpp": 0.9 * r, "psnr": 20 + i, "dists": d}
                       for i, (r, d) in enumerate(zip(rates, dists))]}
    result = bd.bd_in_range(anchor, test, 0.1, 0.36, key="dists")
    assert result["bd_rate"] == pytest.approx(-10.0, abs=0.01)
    assert result["bd_metric"] == pytest.approx(-0.05 * math.log2(1 / 0.9), abs=1e-4)
    rows = bd.range_table({"jpeg-420": anchor, "irncodec-x2-jpeg": test,
                           "irncodec-x2-webp": _curve(rates, [20, 21, 22, 23, 24])}, 0.1, 0.36)
    by_test = {r["test"]: r for r in rows}
    assert by_test["irncodec-x2-jpeg"]["dists"]["bd_rate"] == pytest.approx(-10.0, abs=0.01)
    assert "dists" not in by_test["irncodec-x2-webp"]  # no DISTS measured: no DISTS BD
    text = report.range_markdown(rows, None, 0.1, 0.36)
    assert "| BD-rate DISTS (%) | BD-DISTS |" in text
    assert "| irncodec-x2-jpeg | jpeg-420 | -10.0 | +0.15 | -10.0 | -0.0076 |" in text


def test_range_table_puts_the_envelope_first_against_every_measured_anchor():
    c = _curve([0.1, 0.2, 0.4, 0.8], [26, 28, 30, 32])
    summary = {m: c for m in ("jpeg-420", "avif", "irncodec-x2-jpeg", bd.ENVELOPE, "bicubic-x2-jpeg")}
    rows = bd.range_table(summary, 0.1, 0.5)
    assert rows[0]["test"] == bd.ENVELOPE
    assert {(r["test"], r["anchor"]) for r in rows} == {
        (t, a) for t in (bd.ENVELOPE, "irncodec-x2-jpeg", "bicubic-x2-jpeg")
        for a in ("jpeg-420", "avif", "bicubic-x2-jpeg") if t != a}
    assert all(r["bd_rate"] == pytest.approx(0, abs=1e-9) for r in rows)
    text = report.range_markdown(rows, bd.envelope({"irncodec-x2-jpeg": c}), 0.1, 0.5)
    assert "Over 0.1-0.5 bpp" in text and "| 0.200 | 28.00 | irncodec-x2-jpeg |" in text


def test_bd_report_rewrites_the_tables_from_a_saved_summary(tmp_path):
    c = _curve([0.1, 0.2, 0.4, 0.8], [26, 28, 30, 32])
    methods = {m: c for m in ("jpeg-420", "webp", "irncodec-x2-jpeg", "irncodec-x2-webp", "bicubic-x2-jpeg")}
    path = _summary(tmp_path / "rd_summary.json", methods)
    result = CliRunner().invoke(bd_report.main, [str(path), "--bd-range", "0.1,0.4"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = (tmp_path / "bd_rate.md").read_text()
    assert "(kodak, 2 images)" in text and "Over 0.1-0.4 bpp" in text
    assert f"| {bd.ENVELOPE} | jpeg-420 |" in text
    bad = CliRunner().invoke(bd_report.main, [str(path), "--bd-range", "0.5,0.1"])
    assert bad.exit_code == 2 and "LO < HI" in bad.output


def _summary(path: Path, methods: dict, images=("a", "b"), **meta) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": {"dataset_name": "kodak", "images": list(images), **meta},
                                "methods": methods}))
    return path


def test_plot_styles_keep_a_codec_colour_and_tell_scales_apart():
    styles = {m: plots._style(m) for m in ("irncodec-x1.25-webp", "irncodec-x1.5-webp", "irncodec-x2-webp",
                                           "irncodec-x3-webp", "irncodec-x4-webp", "irncodec-x2-jpeg")}
    assert {styles[m]["color"] for m in styles if m.endswith("webp")} == {plots.COLOURS["irncodec-webp"]}
    assert styles["irncodec-x2-jpeg"]["color"] == plots.COLOURS["irncodec-jpeg"]
    assert len({styles[m]["marker"] for m in styles if m.endswith("webp")}) == 5
    assert plots._family("irncodec-x1.25-webp") == "irncodec-webp" and plots._family("avif") == "avif"
    assert plots._style("irncodec-envelope")["color"] == "black"


def test_bd_report_merges_runs_per_scale_into_one_envelope(tmp_path):
    """One run per scale: the merged envelope takes each rate's best point from whichever
    scale gives it, and the merged summary keeps every series and model."""
    anchors = {"jpeg-420": _curve([0.1, 0.2, 0.4, 0.8], [25, 27, 29, 31])}
    low = _curve([0.1, 0.2, 0.4], [27, 28, 29])  # x2: best at low rates
    high = _curve([0.2, 0.4, 0.8], [27.5, 30, 33])  # x1.5: best from 0.4 bpp up
    one = _summary(tmp_path / "x2" / "rd_summary.json", {**anchors, "irncodec-x2-jpeg": low},
                   models={"irncodec-x2-jpeg": ["m2"]}, qualities=[30, 50], notes=["JXL skipped"])
    two = _summary(tmp_path / "x1.5" / "rd_summary.json", {"irncodec-x1.5-jpeg": high,
                                                           bd.ENVELOPE: high},  # its own, replaced
                   models={"irncodec-x1.5-jpeg": ["m2"]}, qualities=[50, 90], notes=["JXL skipped"])
    out = tmp_path / "merged"
    result = CliRunner().invoke(bd_report.main, [str(one), str(two), "--out", str(out), "--plot"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    merged = json.loads((out / "rd_summary.json").read_text())
    assert set(merged["methods"]) == {"jpeg-420", "irncodec-x2-jpeg", "irncodec-x1.5-jpeg", bd.ENVELOPE}
    frontier = [(p["bpp"], p["psnr"], p["series"]) for p in merged["methods"][bd.ENVELOPE]["points"]]
    assert frontier == [(0.1, 27, "irncodec-x2-jpeg"), (0.2, 28, "irncodec-x2-jpeg"),
                        (0.4, 30, "irncodec-x1.5-jpeg"), (0.8, 33, "irncodec-x1.5-jpeg")]
    meta = merged["meta"]
    assert meta["qualities"] == [30, 50, 90] and meta["notes"] == ["JXL skipped"]
    assert meta["models"] == {"irncodec-x2-jpeg": ["m2"], "irncodec-x1.5-jpeg": ["m2"]}
    assert meta["merged_from"] == [str(one), str(two)]
    assert "| 0.400 | 30.00 | irncodec-x1.5-jpeg |" in (out / "bd_rate.md").read_text()
    assert (out / "rd_curve.png").stat().st_size > 0


@pytest.mark.parametrize("case, message", [
    ("other images", "summary 2 was measured on other images (kodak, 3 images) than summary 1 (kodak, 2 images)"),
    ("other points", "series 'jpeg-420' has other points in summary 2 than in an earlier one"),
    ("no --out", "merging several summaries needs --out FOLDER"),
    ("not json", "not JSON"),
    ("not a summary", "not an rd_summary.json written by rd_curve.py"),
])
def test_bd_report_refuses_summaries_it_cannot_merge(tmp_path, case, message):
    c = _curve([0.1, 0.2, 0.4], [26, 28, 30])
    one = _summary(tmp_path / "1.json", {"jpeg-420": c})
    two = {"other images": lambda p: _summary(p, {"webp": c}, images=("a", "b", "c")),
           "other points": lambda p: _summary(p, {"jpeg-420": _curve([0.1, 0.2], [26, 29])}),
           "no --out": lambda p: _summary(p, {"webp": c}),
           "not json": lambda p: p.write_text("{"),
           "not a summary": lambda p: p.write_text('{"methods": {}}')}[case]
    two(tmp_path / "2.json")
    args = [str(one), str(tmp_path / "2.json")] + ([] if case == "no --out" else ["--out", str(tmp_path / "o")])
    result = CliRunner().invoke(bd_report.main, args)
    assert result.exit_code != 0 and message in " ".join(result.output.split())
    assert not (tmp_path / "o").exists()  # nothing written on a refusal


# --- the whole harness -------------------------------------------------------------

def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames), list(reader)


def test_harness_writes_points_means_and_reports(tiny_weights, dataset, tmp_path, no_dists):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.main, [
        "--dataset", str(dataset), "--limit", "2", "--qf", "50,90", "--model", tiny_weights[2],
        "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "DISTS weights not found" in result.output  # said once, column left out
    assert result.output.count("DISTS weights not found") == 1

    columns, rows = _read_csv(out / "rd_points.csv")
    assert columns == [c for c in rd_rows.COLUMNS if c != "dists"]
    per_image = [r for r in rows if r["image"] != "mean"]
    means = [r for r in rows if r["image"] == "mean"]
    assert {r["image"] for r in per_image} == {"img0", "img1"}
    assert len(per_image) == 2 * len(means)
    methods = {r["method"] for r in means}
    assert {"irncodec-x2-jpeg", "irncodec-x2-webp", "irncodec-x2-png", "jpeg-420", "jpeg-444", "webp",
            "bicubic-x2-jpeg", "bicubic-x2-png"} <= methods
    irn = [r for r in means if r["method"] == "irncodec-x2-jpeg"]
    assert sorted(int(r["quality"]) for r in irn) == [50, 90]
    for row in per_image:
        assert float(row["bpp"]) == pytest.approx(int(row["bytes"]) * 8 / (64 * 48))
        assert math.isnan(float(row["ms_ssim"]))  # 48 px is too small for MS-SSIM
        assert 0 < float(row["ssim"]) <= 1 and float(row["psnr"]) > 5
    for mean in means:
        members = [r for r in per_image if (r["method"], r["quality"]) == (mean["method"], mean["quality"])]
        assert float(mean["bpp"]) == pytest.approx(sum(float(r["bpp"]) for r in members) / 2)

    summary = json.loads((out / "rd_summary.json").read_text())
    assert summary["meta"]["dists"] is False and summary["meta"]["images"] == ["img0", "img1"]
    assert len(summary["methods"]["jpeg-420"]["points"]) >= 4
    assert (out / "rd_curve.png").stat().st_size > 1000
    bd_text = (out / "bd_rate.md").read_text()
    assert "irncodec-x2-jpeg" in bd_text and "Over 0.1-0.5 bpp" in bd_text
    assert bd.ENVELOPE in summary["methods"] and summary["meta"]["bd_range"] == [0.1, 0.5]
    assert "| method |" in result.output


def test_harness_without_baselines(tiny_weights, dataset, tmp_path, no_dists):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.main, [
        "--dataset", str(dataset), "--limit", "1", "--qf", "80", "--codec", "jpeg", "--no-baselines",
        "--model", tiny_weights[4], "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    _, rows = _read_csv(out / "rd_points.csv")
    assert {r["method"] for r in rows} == {"irncodec-x4-jpeg", "irncodec-x4-png"}
    assert {r["scale"] for r in rows} == {"4"}


def test_harness_at_resampled_scales(tiny_weights, dataset, tmp_path, no_dists):
    """--scale takes any scale from 1.1 to 4: a curve per scale, named by it, measured on real files."""
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.main, [
        "--dataset", str(dataset), "--limit", "1", "--qf", "80", "--codec", "jpeg", "--no-baselines",
        "--model", tiny_weights[2], "--scale", "1.5,2", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    _, rows = _read_csv(out / "rd_points.csv")
    assert {r["method"] for r in rows} == {f"irncodec-x{s}-{c}" for s in ("1.5", "2") for c in ("jpeg", "png")}
    bpp = {r["method"]: float(r["bpp"]) for r in rows if r["method"].endswith("png")}
    assert bpp["irncodec-x1.5-png"] > 1.5 * bpp["irncodec-x2-png"]  # 1.78 times the LR pixels
    from benchmarks.rd.measure import lr_size

    assert lr_size((768, 512), 1.5) == (512, 341) and lr_size((767, 511), 2) == (384, 256)
    bad = CliRunner().invoke(cli.main, ["--dataset", str(dataset), "--scale", "1", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "scales are numbers from 1.1 to 4" in bad.output


def test_model_scale_must_match_scale_option(tiny_weights, dataset, tmp_path):
    result = CliRunner().invoke(cli.main, ["--dataset", str(dataset), "--model", tiny_weights[2],
                                          "--scale", "4", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "x2" in result.output


# --- metrics ---------------------------------------------------------------------

def test_metrics_of_identical_images():
    x = image_to_tensor(photo_like(64, 48))
    assert metrics.psnr(x, x) == math.inf
    assert metrics.ssim(x, x) == pytest.approx(1.0)
    assert metrics.y_psnr(x, x, border=2) == math.inf


def test_ms_ssim_needs_more_than_160_pixels():
    small = image_to_tensor(photo_like(64, 48))
    assert math.isnan(metrics.ms_ssim(small, small))
    big = image_to_tensor(photo_like(176, 168))
    assert metrics.ms_ssim(big, big) == pytest.approx(1.0)
    noisy = (big + 0.05 * torch.randn_like(big)).clamp(0, 1)
    assert 0 < metrics.ms_ssim(big, noisy) < 1


def test_y_psnr_uses_studio_luma_and_crops_the_border():
    a = torch.full((1, 3, 20, 20), 0.5)
    b = a + 1 / 255  # every channel one level up: Y rises by 219/255 levels
    assert metrics.y_psnr(a, b, border=0) == pytest.approx(20 * math.log10(255 / (219 / 255)))
    c = a.clone()
    c[..., :3, :] = 0  # damage only within a 3-pixel border
    assert metrics.y_psnr(a, c, border=3) == math.inf
    assert metrics.y_psnr(a, c, border=2) < 30
    with pytest.raises(ValueError):
        metrics.y_psnr(a, a, border=10)


# --- DISTS -----------------------------------------------------------------------

def test_dists_unavailable_without_cached_weights(no_dists):
    with pytest.raises(metrics.DistsUnavailable, match=r"run `python benchmarks/get_dists_weights\.py`"):
        metrics.load_dists()


def test_dists_cache_location(tmp_path, monkeypatch):
    monkeypatch.setenv(metrics.CACHE_ENV, str(tmp_path / "mine"))
    assert metrics.dists_weights_path() == tmp_path / "mine" / "dists.safetensors"
    monkeypatch.delenv(metrics.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert metrics.dists_weights_path() == tmp_path / "xdg" / "irncodec" / "dists.safetensors"


def _fake_dists_cache() -> None:
    """Random weights of the right names and shapes where get_dists_weights.py writes the real ones."""
    from safetensors.torch import save_file

    path = metrics.dists_weights_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    state = {name: torch.randn(shape) * 0.05 for name, shape in metrics.dists_state_shapes().items()}
    state["alpha"], state["beta"] = torch.rand(1475), torch.rand(1475)
    save_file(state, str(path))


def test_dists_loads_from_the_cache_without_network(tmp_path, monkeypatch):
    import socket

    _fake_dists_cache()

    def no_network(*args, **kwargs):
        raise AssertionError("DISTS tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    dists = metrics.load_dists()
    x = image_to_tensor(photo_like(64, 48))
    y = image_to_tensor(photo_like(64, 48, seed=3))
    value = dists(x, y)
    assert math.isfinite(value) and value > 0
    assert dists(x, x) == pytest.approx(0.0, abs=1e-5)
    assert dists(x, y) == value  # the reference's cached features give the same score


def test_dists_rejects_a_malformed_cache():
    from safetensors.torch import save_file

    path = metrics.dists_weights_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(metrics.DistsUnavailable, match="is not valid"):
        metrics.load_dists()
    save_file({"conv0.weight": torch.zeros(3, 3, 3, 64)}, str(path))  # HWIO, and the rest missing
    with pytest.raises(metrics.DistsUnavailable, match="missing"):
        metrics.load_dists()


# --- speed -----------------------------------------------------------------------

def _speed_job(image: Path, method: str, **extra) -> dict:
    return {"method": method, "device": "cpu", "image": str(image), "quality": 75, "repeat": 2,
            "threads": 1, **extra}


def test_speed_measures_pillow_in_a_fresh_process(dataset, tmp_path):
    row = speed.measure(_speed_job(dataset / "img0.png", "jpeg-420"), tmp_path, speed.measure_in_subprocess)
    assert row["bytes"] > 0 and row["encode_s"] > 0 and row["decode_s"] > 0
    assert row["encode_peak_mb"] > 0 and row["encode_extra_mb"] >= 0
    assert row["encode_mps"] == pytest.approx(64 * 48 / 1e6 / row["encode_s"])


def test_speed_measures_irncodec(dataset, tmp_path, tiny_weights):
    job = _speed_job(dataset / "img0.png", "irncodec-x2", model=tiny_weights[2])
    row = speed.measure(job, tmp_path, speed.run_job)
    assert row["bytes"] == len(irncodec.encode(photo_like(64, 48), quality=75, model=tiny_weights[2]))
    table = speed.speed_markdown([row] + speed.mean_rows([row]))
    assert "| irncodec-x2 | cpu | img0 |" in table and "| mean |" in table


def test_speed_measures_the_entropy_path(dataset, tmp_path, tiny_entropy_weights):
    (job,) = speed.plan([dataset / "img0.png"], {2: tiny_entropy_weights[2]}, [], 75, 1, 1, ["cpu"],
                        codec="entropy", level=3)
    assert job["method"] == "irncodec-x2-entropy" and job["lr_quality"] == 3
    row = speed.measure(job, tmp_path, speed.run_job)
    data = irncodec.encode(photo_like(64, 48), quality=3, codec="entropy", model=tiny_entropy_weights[2])
    assert row["bytes"] == len(data)


def test_speed_times_new_processes_against_a_pillow_avif_process(dataset, tmp_path, tiny_weights):
    commands = speed.cold_commands(dataset / "img0.png", tmp_path, 75, tiny_weights[2], "jpeg", None, 1)
    assert commands["irncodec encode"][-4:] == ["-m", tiny_weights[2], "--threads", "1"]
    del commands["python + Pillow AVIF"]  # Pillow may lack AVIF here; its command is the same kind
    rows = speed.time_commands(commands, repeat=1)
    assert [r["command"] for r in rows] == ["irncodec encode", "irncodec info", "irncodec --help"]
    decoded = irncodec.decode((tmp_path / "cold.irn").read_bytes(), model=tiny_weights[2])
    assert decoded.size == (64, 48)  # the encode really ran
    rows.append({"command": "python + Pillow AVIF", "seconds": rows[0]["seconds"] / 4})
    table = speed.cold_markdown(rows, "img0.png")
    assert "| irncodec encode | " in table and table.splitlines()[4].endswith("| 4.0 |")
    means = [{"method": "avif", "device": "cpu", "encode_s": 0.1, "decode_s": 0.05},
             {"method": "irncodec-x2", "device": "cpu", "encode_s": 0.6, "decode_s": 0.9}]
    assert "irncodec-x2 (cpu): 1500 ms, 10.0x" in speed.avif_multiples(means)
    with pytest.raises(click.ClickException, match="irncodec info failed"):
        speed.time_commands({"irncodec info": [sys.executable, "-m", "irncodec", "info", str(tmp_path / "no")]}, 1)


def test_means_leave_out_nan_ms_ssim():
    rows = [{"method": "m", "scale": 1, "codec": "c", "quality": 50, "image": str(i), "bytes": b,
             "bpp": b / 10, "psnr": 30.0 + i, "ssim": 0.9, "ms_ssim": v, "y_psnr": 31.0,
             "encode_s": 0.1, "decode_s": 0.2} for i, (b, v) in enumerate([(10, 0.9), (30, math.nan)])]
    (mean,) = rd_rows.mean_rows(rows)
    assert mean["image"] == "mean" and mean["bpp"] == 2.0 and mean["psnr"] == 30.5
    assert mean["ms_ssim"] == 0.9


def test_harness_adds_a_dists_column_when_weights_are_cached(tiny_weights, dataset, tmp_path):
    _fake_dists_cache()
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.main, [
        "--dataset", str(dataset), "--limit", "1", "--qf", "80", "--codec", "jpeg", "--no-baselines",
        "--model", tiny_weights[2], "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "DISTS weights" not in result.output
    columns, rows = _read_csv(out / "rd_points.csv")
    assert columns == rd_rows.COLUMNS
    assert all(math.isfinite(float(r["dists"])) for r in rows)
    assert json.loads((out / "rd_summary.json").read_text())["meta"]["dists"] is True


def test_compare_table_pairs_points():
    pt = lambda q, bpp, psnr: {"quality": q, "bpp": bpp, "psnr": psnr, "ssim": 0.9}
    methods = {
        "irncodec-x2-jpeg": {"points": [pt(50, 0.30, 30.0), pt(90, 0.60, 32.0)]},
        "bicubic-x2-jpeg": {"points": [pt(50, 0.29, 29.0), pt(90, 0.58, 30.5)]},
        "jpeg-420": {"points": [pt(10, 0.25, 27.0), pt(30, 0.50, 31.0), pt(70, 0.95, 35.0)]},
    }
    rows = compare.compare_rows(methods)
    assert [r[0] for r in rows] == ["x2-jpeg q50", "x2-jpeg q90"]
    assert rows[0][4:7] == ["0.290", "29.00", "0.9000"]  # bicubic at the same quality
    assert rows[0][7] == "q10" and rows[1][7] == "q30"  # nearest JPEG by bpp
    assert compare.markdown(rows).count("\n") == 4


def test_kodak_download_verifies_checksums(tmp_path):
    server = tmp_path / "server"
    server.mkdir()
    good, bad = b"image one", b"image two"
    (server / "a.png").write_bytes(good)
    (server / "b.png").write_bytes(bad)
    sums = {"a.png": get_kodak.sha256_of(good), "b.png": get_kodak.sha256_of(good)}
    out = tmp_path / "kodak"
    with pytest.raises(ValueError, match=r"b\.png: checksum mismatch"):
        get_kodak.download(out, server.as_uri() + "/", sums)
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]  # nothing half-written
    sums["b.png"] = get_kodak.sha256_of(bad)
    assert get_kodak.download(out, server.as_uri() + "/", sums) == ["b.png"]  # a.png kept
    assert get_kodak.download(out, server.as_uri() + "/", sums) == []


def test_kodak_checksum_list_names_the_24_images():
    assert sorted(get_kodak.expected_checksums()) == [f"kodim{i:02d}.png" for i in range(1, 25)]


def test_kodak_checksum_list_matches_the_shared_copy():
    kodak = BENCHMARKS.parent.parent / "shared" / "datasets" / "kodak"
    if not kodak.is_dir():
        pytest.skip(f"the Kodak images are not at {kodak} (python benchmarks/get_kodak.py fetches them)")
    assert get_kodak.download(kodak, "file:///nonexistent/", get_kodak.expected_checksums()) == []


def test_compression_aware_table_compares_plain_aware_and_bicubic(tiny_weights, tiny_sain_weights, dataset,
                                                                 tmp_path, monkeypatch):
    from irncodec import zoo

    plain_x2, jpeg_x2 = zoo.DEFAULT_MODELS[2], zoo.CODEC_MODELS[(2, "jpeg")]
    shipped = {plain_x2: tiny_weights[2], jpeg_x2: tiny_sain_weights[2]}
    monkeypatch.setattr(zoo, "_manifest", lambda: {name: {"scale": 2} for name in shipped})
    monkeypatch.setattr(zoo, "_resolve", lambda name: (Path(shipped.get(name, name)), None))
    monkeypatch.setattr(zoo, "model_scale", lambda name: 2)
    zoo._load_cached.cache_clear()
    out = tmp_path / "out"
    result = CliRunner().invoke(aware.main, ["--dataset", str(dataset), "--qf", "30,50,70,90", "--out", str(out)],
                                catch_exceptions=False)
    zoo._load_cached.cache_clear()
    assert result.exit_code == 0, result.output
    data = json.loads((out / "compression_aware_x2_jpeg.json").read_text())
    table = data["datasets"]["images"]["methods"]
    assert set(table) == {"bicubic", plain_x2, jpeg_x2}
    assert table["bicubic"]["30"]["bpp"] < table["bicubic"]["90"]["bpp"]
    assert all(table[m][q]["psnr"] > 8 for m in table for q in ("30", "90"))
    md = (out / "compression_aware_x2_jpeg.md").read_text()
    assert "| 30 |" in md and "| 90 |" in md and "**" in md
    assert "--qf 30,50,70,90" in md and "At equal rate, against bicubic" in md
    equal = data["datasets"]["images"]["equal_rate_vs_bicubic"]
    assert set(equal) == {plain_x2, jpeg_x2}
    assert all(row["bd_metric"] is not None for row in equal.values())


def test_compression_aware_equal_rate_finds_a_model_needing_fewer_bits():
    qualities = (30, 50, 70, 90)
    bicubic = {q: {"bpp": b, "psnr": p} for q, b, p in zip(qualities, (0.2, 0.4, 0.8, 1.6), (26, 28, 30, 32))}
    cheaper = {q: {"bpp": 0.8 * r["bpp"], "psnr": r["psnr"]} for q, r in bicubic.items()}
    rows = aware.equal_rate({"bicubic": bicubic, "cheaper": cheaper})
    assert rows["cheaper"]["bd_rate"] == pytest.approx(-20.0, abs=1e-6)


def test_compression_aware_needs_a_codec_model(tiny_weights, dataset, tmp_path, monkeypatch):
    from irncodec import zoo

    monkeypatch.setattr(zoo, "_manifest", lambda: {"irn-x2-small": {"scale": 2}})
    result = CliRunner().invoke(aware.main, ["--dataset", str(dataset), "--codec", "webp", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "no shipped x2 model is trained for webp" in result.output


# --- coder_init ------------------------------------------------------------------

@pytest.mark.parametrize("make", ["dct", "gdn"])
def test_coder_init_trains_both_coders(dataset, make):
    from irncodec.data import RandomCrops
    from irncodec.models.lr_coder import LRHyperprior

    coder = LRHyperprior() if make == "dct" else coder_init.gdn_coder()
    rows = coder_init.train_coder(coder, RandomCrops([str(dataset)], 32, seed=0), 2, 0.01, make, every=1)
    assert [r["iteration"] for r in rows] == [1, 2]
    assert all(r["bpp"] > 0 and math.isfinite(r["psnr"]) for r in rows)


# --- commands ----------------------------------------------------------------------

def _help(*args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, *args, "--help"], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_rd_runs_as_a_module_and_as_the_script(tmp_path):
    module = _help("-m", "benchmarks.rd", cwd=REPO)
    script = _help(str(BENCHMARKS / "rd_curve.py"), cwd=tmp_path)  # from anywhere: it finds the package
    assert module.startswith("Usage: python -m benchmarks.rd [OPTIONS]")
    assert script.startswith("Usage: rd_curve.py [OPTIONS]")
    assert module.split("\n", 1)[1] == script.split("\n", 1)[1]
    assert "--qf TEXT" in module and "--bd-range TEXT" in module


@pytest.mark.parametrize("name", ["bd_report", "target_bpp", "compression_aware", "compare_models"])
def test_scripts_that_use_the_package_run_as_scripts_and_modules(tmp_path, name):
    script = _help(str(BENCHMARKS / f"{name}.py"), cwd=tmp_path)
    module = _help("-m", f"benchmarks.{name}", cwd=REPO)
    assert script.split("\n", 1)[1] == module.split("\n", 1)[1]


def test_entropy_levels_are_measured_at_the_networks_scales_only():
    """As rate control tries them: a resampled scale gets the image codecs' curves, not the levels'."""
    from benchmarks.rd.settings import irncodec_models

    series = irncodec_models({1.5: "irn-x2-small", 2: "irn-x2-small"}, ["jpeg", "entropy"], override=False)
    assert set(series) == {"irncodec-x1.5-jpeg", "irncodec-x2-jpeg", "irncodec-x2-entropy"}
    overridden = irncodec_models({1.5: "m.safetensors"}, ["entropy"], override=True)
    assert overridden == {"irncodec-x1.5-entropy": ["m.safetensors"]}


def test_target_bpp_resampled_baseline(dataset, tmp_path):
    """--methods runs only the columns asked for; the Lanczos+WebP baseline's file fits the target
    and is the best over its scales (checked here against each scale's own best)."""
    from benchmarks import target_bpp
    from benchmarks.rd.measure import measure_resampled

    result = CliRunner().invoke(target_bpp.main, ["--dataset", str(dataset), "--images", "img0", "--targets", "2",
                                                  "--methods", "lanczos-webp,jpeg-420", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    table = (tmp_path / "target_bpp.md").read_text()
    assert "| image | jpeg-420 | lanczos-webp |" in table and "irncodec" not in table.split("\n", 2)[2]
    img = Image.open(dataset / "img0.png").convert("RGB")
    coded, how = target_bpp.baselines()["lanczos-webp"](img, 64 * 48 * 2 // 8)
    assert coded.nbytes <= 64 * 48 * 2 // 8
    scale, quality = float(how.split()[0][1:]), int(how.split()[1][1:])
    again = measure_resampled(img, scale, "webp", quality)
    assert again.nbytes == coded.nbytes and target_bpp.psnr(img, again.image) == target_bpp.psnr(img, coded.image)
    bad = CliRunner().invoke(target_bpp.main, ["--dataset", str(dataset), "--images", "img0", "--methods", "nope",
                                               "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "choose from irncodec" in bad.output


def test_compare_models_at_equal_rate(tiny_weights, dataset, tmp_path):
    """A model against itself: the same points, BD-rate 0; a table row per scale."""
    from benchmarks import compare_models

    result = CliRunner().invoke(compare_models.main, [tiny_weights[2], tiny_weights[2], "--codec", "jpeg",
                                                      "--scales", "1.5,2", "--dataset", str(dataset),
                                                      "--out", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = [line for line in (tmp_path / "compare_models.md").read_text().splitlines() if line.startswith("| 1.5 |")
            or line.startswith("| 2 |")]
    assert len(rows) == 2 and all("+0.0 %" in row or "-0.0 %" in row for row in rows), rows


# --- lossless-LR round trip ------------------------------------------------------

def test_lossless_lr_ranks_models_by_their_round_trip_psnr(tiny_weights, tiny_sain_weights, dataset, tmp_path):
    from benchmarks import lossless_lr

    result = CliRunner().invoke(lossless_lr.main, [tiny_weights[2], tiny_sain_weights[2], "--dataset", str(dataset),
                                                   "--images", "img1,img0", "--out", str(tmp_path)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "lossless_lr.json").read_text())
    assert summary["images"] == ["img1", "img0"]
    means = [m["mean_psnr"] for m in summary["models"].values()]
    assert means == sorted(means, reverse=True) and len(means) == 2
    for model, row in summary["models"].items():  # each value is the codec's own round trip
        image = Image.open(dataset / "img0.png").convert("RGB")
        decoded = irncodec.decode(irncodec.encode(image, codec="png", model=model), model=model)
        expected = metrics.psnr(image_to_tensor(image).double(), image_to_tensor(decoded.convert("RGB")).double())
        assert row["psnr"]["img0"] == pytest.approx(expected, abs=1e-6)
        assert row["mean_psnr"] == pytest.approx((row["psnr"]["img0"] + row["psnr"]["img1"]) / 2)
    table = (tmp_path / "lossless_lr.md").read_text().splitlines()
    assert table[2] == "| model | mean | img1 | img0 |" and len(table) == 6
    bad = CliRunner().invoke(lossless_lr.main, [tiny_weights[2], "--dataset", str(dataset), "--images", "nope",
                                                "--out", str(tmp_path)])
    assert bad.exit_code == 2 and f"not in {dataset}: nope" in bad.output
