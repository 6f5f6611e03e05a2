"""BD-rate of measured curves (pure computation on summary dicts, no files): Bjøntegaard
(Akima) over wherever two curves overlap, the irncodec envelope, and BD within a
bpp window (PCHIP)."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from .rows import curve_points
from .settings import default_lr_codecs

#: Curves every irncodec curve is compared with in ``bd_rate.md``.
BD_ANCHORS = ("jpeg-420", "webp")
BD_MIN_POINTS = 4
#: The envelope's name, and the anchors it is compared with over ``--bd-range``.
ENVELOPE = "irncodec-envelope"
RANGE_ANCHORS = ("jpeg-420", "webp", "avif", "bicubic-x2-jpeg", "bicubic-x4-jpeg")
DEFAULT_BD_RANGE = (0.1, 0.5)
#: Metrics where lower is better (DISTS, a distance): their BD is taken on the
#: negated values and the BD-metric reported as test minus anchor, so a negative
#: BD-DISTS, like a negative BD-rate, means the test is better.
LOWER_IS_BETTER = frozenset({"dists"})


# --- whole overlap -------------------------------------------------------------

def _overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Length of the range both value sets span (0 when disjoint)."""
    return max(min(max(a), max(b)) - max(min(a), min(b)), 0.0)


def _coverage(anchor: Sequence[float], test: Sequence[float]) -> float:
    """Fraction of the test curve's span that the anchor also spans (BD only sees that part)."""
    span = max(test) - min(test)
    return _overlap(anchor, test) / span if span > 0 else 0.0


def _sorted_unique(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    """Points sorted by x with repeated x dropped (the interpolators need x strictly rising)."""
    seen: dict[float, float] = {}
    for x, y in sorted(zip(xs, ys)):
        seen.setdefault(x, y)
    return list(seen), list(seen.values())


def bd_pair(anchor: dict[str, Any], test: dict[str, Any], key: str = "psnr") -> dict[str, Any]:
    """BD-rate (%) and BD-metric of ``test`` against ``anchor`` (Akima), with notes on why not or how far.

    ``rate_note`` concerns the BD-rate, ``metric_note`` the BD-metric; ``note`` joins them.
    """
    import bjontegaard as bd

    ra, da = curve_points(anchor, key)
    rt, dt = curve_points(test, key)
    result: dict[str, Any] = {"bd_rate": None, "bd_metric": None}
    skip = ""
    if min(len(ra), len(rt)) < BD_MIN_POINTS:
        skip = f"skipped: fewer than {BD_MIN_POINTS} points"
    elif _overlap(ra, rt) == 0:
        skip = "skipped: no bpp overlap"
    if skip:
        return {**result, "rate_note": skip, "metric_note": skip, "note": skip}
    label = {"psnr": "PSNR", "ms_ssim": "MS-SSIM"}.get(key, key)
    rate_note = metric_note = ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if _overlap(da, dt) > 0:
            xa, ya = _sorted_unique(da, ra)
            xt, yt = _sorted_unique(dt, rt)
            result["bd_rate"] = float(bd.bd_rate(ya, xa, yt, xt, method="akima",
                                                 require_matching_points=False, min_overlap=0))
            if _coverage(da, dt) < 0.75:
                rate_note = f"BD-rate over only {_coverage(da, dt):.0%} of the test's {label} range"
        else:
            rate_note = f"no {label} overlap: BD-rate undefined"
        xa, ya = _sorted_unique(ra, da)
        xt, yt = _sorted_unique(rt, dt)
        result["bd_metric"] = float(bd.bd_psnr(xa, ya, xt, yt, method="akima",
                                               require_matching_points=False, min_overlap=0))
    if _coverage(ra, rt) < 0.75:
        metric_note = f"BD-{label} over only {_coverage(ra, rt):.0%} of the test's bpp range"
    note = "; ".join(n for n in (rate_note, metric_note) if n)
    return {**result, "rate_note": rate_note, "metric_note": metric_note, "note": note}


def bd_table(summary: dict[str, dict[str, Any]], anchors: Sequence[str] = BD_ANCHORS,
             key: str = "psnr") -> list[dict[str, Any]]:
    """BD rows of every rescaling curve (irncodec, and bicubic+JPEG for reference) per anchor."""
    from irncodec.lr_codecs import available_codecs, codec_class

    tests = [m for m in summary if m.startswith(("irncodec-", "bicubic-")) and not m.endswith("-png")]
    rows = []
    for test in tests:
        extra: list[str] = []
        prefix, codec = test.rsplit("-", 1)
        if test.startswith("irncodec-") and codec in available_codecs() and codec_class(codec).per_level_models:
            # also against irncodec's own image-codec paths at that scale
            extra = [f"{prefix}-{other}" for other in default_lr_codecs()
                     if not codec_class(other).per_level_models and f"{prefix}-{other}" in summary]
        for anchor in list(anchors) + extra:
            if anchor not in summary:
                skip = "skipped: anchor not measured"
                rows.append({"test": test, "anchor": anchor, "bd_rate": None, "bd_metric": None,
                             "rate_note": skip, "metric_note": skip, "note": skip})
                continue
            rows.append({"test": test, "anchor": anchor, **bd_pair(summary[anchor], summary[test], key)})
    return rows


# --- envelope ------------------------------------------------------------------

def envelope(summary: dict[str, dict[str, Any]], prefix: str = "irncodec-") -> dict[str, Any] | None:
    """The best mean point at each rate over every ``prefix`` series (upper-left Pareto frontier of PSNR).

    Each point keeps its ``series`` and ``quality``, so the table shows which path wins where.
    """
    points = [{**p, "series": name} for name, curve in summary.items()
              if name.startswith(prefix) and name != ENVELOPE for p in curve["points"]
              if math.isfinite(p.get("bpp", math.nan)) and math.isfinite(p.get("psnr", math.nan))]
    frontier: list[dict[str, Any]] = []
    for point in sorted(points, key=lambda p: (p["bpp"], -p["psnr"])):
        if not frontier or point["psnr"] > frontier[-1]["psnr"]:
            frontier.append(point)
    return {"scale": None, "codec": None, "points": frontier} if frontier else None


def with_envelope(summary: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``summary`` plus the envelope, when it has more than one irncodec series and lacks one."""
    best = envelope(summary)
    if ENVELOPE in summary or best is None or sum(m.startswith("irncodec-") for m in summary) < 2:
        return summary
    return {**summary, ENVELOPE: best}


# --- within a bpp window -------------------------------------------------------

def _interpolator(xs: Sequence[float], ys: Sequence[float]) -> Callable[[float], float]:
    """Monotone piecewise-cubic (PCHIP) through the points; x must be strictly rising."""
    from scipy.interpolate import PchipInterpolator

    f = PchipInterpolator(xs, ys, extrapolate=False)
    return lambda x: float(f(x))


def _mean_gap(f: Callable[[float], float], g: Callable[[float], float], lo: float, hi: float,
              steps: int = 200) -> float:
    """Mean of f - g over [lo, hi] (trapezoid rule on a fine grid)."""
    xs = [lo + (hi - lo) * i / steps for i in range(steps + 1)]
    gaps = [f(x) - g(x) for x in xs]
    return (sum(gaps) - (gaps[0] + gaps[-1]) / 2) / steps


def _window(rates: list[float], values: list[float], lo: float, hi: float) -> tuple[list[float], list[float]]:
    """The points within lo..hi bpp plus the nearest one outside on each side (to interpolate to the edges)."""
    first = max([i for i, r in enumerate(rates) if r <= lo], default=0)
    last = min([i for i, r in enumerate(rates) if r >= hi], default=len(rates) - 1)
    return rates[first:last + 1], values[first:last + 1]


def bd_in_range(anchor: dict[str, Any], test: dict[str, Any], lo: float, hi: float,
                key: str = "psnr") -> dict[str, Any]:
    """BD-PSNR and BD-rate of ``test`` against ``anchor`` restricted to ``lo``..``hi`` bpp.

    BD-PSNR: mean metric gap over log-rate in the part of [lo, hi] both curves
    span (test minus anchor, for a :data:`LOWER_IS_BETTER` metric too). BD-rate:
    mean log-rate gap over the metric range the anchor covers in that window
    (clipped to the test's range), as a percentage. Only points in the window
    (and one beyond each edge) count, so a curve that flattens far outside it
    changes nothing. PCHIP interpolation, so a curve is never
    extrapolated; ``span`` says what part of the window was compared.
    """
    sign = -1.0 if key in LOWER_IS_BETTER else 1.0
    ra, da = _window(*_sorted_unique(*_signed(curve_points(anchor, key), sign)), lo, hi)
    rt, dt = _window(*_sorted_unique(*_signed(curve_points(test, key), sign)), lo, hi)
    result: dict[str, Any] = {"bd_rate": None, "bd_metric": None, "span": None, "note": ""}
    lo_r, hi_r = max(lo, ra[0] if ra else hi, rt[0] if rt else hi), min(hi, ra[-1] if ra else lo,
                                                                         rt[-1] if rt else lo)
    if min(len(ra), len(rt)) < 2 or hi_r <= lo_r:
        return {**result, "note": f"no points of both curves within {lo:g}-{hi:g} bpp"}
    result["span"] = (lo_r, hi_r)
    anchor_at = _interpolator([math.log(r) for r in ra], da)
    test_at = _interpolator([math.log(r) for r in rt], dt)
    result["bd_metric"] = sign * _mean_gap(test_at, anchor_at, math.log(lo_r), math.log(hi_r))
    # BD-rate over the anchor's metric range in the window, where both curves reach.
    d_lo, d_hi = anchor_at(math.log(lo_r)), anchor_at(math.log(hi_r))
    if all(a < b for a, b in itertools.pairwise(da)) and all(a < b for a, b in itertools.pairwise(dt)):
        d_lo, d_hi = max(d_lo, dt[0]), min(d_hi, dt[-1])
        if d_hi > d_lo:
            log_rate_anchor = _interpolator(da, [math.log(r) for r in ra])
            log_rate_test = _interpolator(dt, [math.log(r) for r in rt])
            result["bd_rate"] = 100 * (math.exp(_mean_gap(log_rate_test, log_rate_anchor, d_lo, d_hi)) - 1)
        else:
            result["note"] = "no common quality range: BD-rate undefined"
    else:
        result["note"] = "quality not rising with rate: BD-rate undefined"
    return result


def _signed(curve: tuple[list[float], list[float]], sign: float) -> tuple[list[float], list[float]]:
    rates, values = curve
    return rates, [sign * v for v in values]


def range_table(summary: dict[str, dict[str, Any]], lo: float, hi: float,
                anchors: Sequence[str] = RANGE_ANCHORS) -> list[dict[str, Any]]:
    """BD rows over lo..hi bpp: the envelope and each rescaling series against each measured anchor.

    Where both curves have DISTS, a row also has ``dists``: the same BD on DISTS.
    """
    tests = [m for m in summary if m.startswith(("irncodec-", "bicubic-")) and not m.endswith("-png")]
    tests.sort(key=lambda m: (m != ENVELOPE, m))
    rows = []
    for test in tests:
        for anchor in anchors:
            if anchor not in summary or anchor == test:
                continue
            row = {"test": test, "anchor": anchor, **bd_in_range(summary[anchor], summary[test], lo, hi)}
            if all(curve_points(summary[m], "dists")[0] for m in (test, anchor)):
                row["dists"] = bd_in_range(summary[anchor], summary[test], lo, hi, key="dists")
            rows.append(row)
    return rows
