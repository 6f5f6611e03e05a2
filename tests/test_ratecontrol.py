"""Rate control (--target-bpp): the best file that fits, found by real encodes."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import irncodec
from irncodec import container, ratecontrol, zoo
from irncodec.cli import main
from irncodec.errors import CodecError
from irncodec.pipeline import network_scale_for
from irncodec.ratecontrol import SEARCH_SCALES, encode_to_target, largest_fitting

from .conftest import photo_like


def _psnr(a, b) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return 10 * np.log10(255**2 / mse)


@pytest.fixture(scope="module")
def image():
    return photo_like(96, 64, seed=3)


@pytest.fixture(scope="module")
def at_one_bpp(image):
    return encode_to_target(image, 1.0, shortlist=None)  # every path


def test_file_fits_and_decodes_to_the_reported_quality(image, at_one_bpp):
    data, choice = at_one_bpp.data, at_one_bpp.choice
    assert len(data) * 8 / (96 * 64) <= 1.0
    assert choice.size == len(data) and choice.bpp == pytest.approx(len(data) * 8 / (96 * 64))
    decoded = irncodec.decode(data)
    assert decoded.size == image.size and decoded.mode == "RGB"
    assert _psnr(decoded, image) == pytest.approx(choice.psnr, abs=1e-9)  # decoded as decode does
    h = container.unpack(data).header
    assert (h.codec, h.model, h.quality) == (choice.codec, choice.model, choice.quality)
    assert h.scale == network_scale_for(choice.scale)
    assert (h.lr_width, h.lr_height) == (round(96 / choice.scale), round(64 / choice.scale))


def test_every_path_is_tried_and_the_best_kept(at_one_bpp):
    paths = {(c.codec, c.scale) for c in at_one_bpp.candidates}
    assert {(codec, s) for codec in ("jpeg", "webp") for s in SEARCH_SCALES} <= paths
    assert all(s in (2, 4) for codec, s in paths if codec == "entropy")  # its levels at their own scales only
    assert at_one_bpp.choice.psnr == max(c.psnr for c in at_one_bpp.candidates)
    assert all(c.size * 8 / (96 * 64) <= 1.0 for c in at_one_bpp.candidates)


def _encode_at(image, c) -> bytes:
    """The file a plain encode makes with a candidate's settings (its step too)."""
    if c.step == 1:
        return irncodec.encode(image, quality=c.quality, codec=c.codec, scale=c.scale)
    from irncodec.lr_codecs import get_codec
    from irncodec.pipeline import Source, downscale

    net = zoo.load_model(c.model)
    source = Source(image)
    lr, px, py = downscale(net, source.rgb)
    lr_codec = get_codec(c.codec, coder=net.lr_coder, step=c.step)
    return container.pack(source.file(net, c.model, lr_codec, c.quality, lr_codec.encode(lr, c.quality), (px, py)))


def test_each_path_uses_the_largest_quality_that_fits(image, at_one_bpp):
    budget = 96 * 64 // 8
    for c in at_one_bpp.candidates:
        if c.codec == "entropy":
            levels = zoo.levels(c.codec, c.scale)
            # finer steps of the largest level that fits, or coarser ones of the next level up
            fits_at_its_step = len(irncodec.encode(image, quality=c.quality, codec=c.codec)) <= budget
            assert fits_at_its_step == (c.step <= 1), c
            bigger = [q for q in levels if q > c.quality][:1] if c.step <= 1 else []
        else:
            bigger = [c.quality + 1] if c.quality < 100 else []
        for q in bigger:
            assert len(irncodec.encode(image, quality=q, codec=c.codec, scale=c.scale)) > budget, c
        # and the candidate is exactly the file a plain encode with its settings makes
        assert len(_encode_at(image, c)) == c.size


def test_steps_fill_the_budget_between_levels(image):
    """With only the levels, a target between two of them gets the lower one's file;
    the step takes the file to within a few percent of the target, on both sides."""
    levels = zoo.levels("entropy", 2)
    sizes = [len(irncodec.encode(image, quality=q, codec="entropy")) for q in levels]
    i = max(range(len(sizes) - 1), key=lambda k: sizes[k + 1] / sizes[k])  # the widest gap
    budget = int((sizes[i] * sizes[i + 1]) ** 0.5)
    result = encode_to_target(image, budget * 8 / (96 * 64), codec="entropy", scale=2)
    steps = sorted((c.quality, c.step) for c in result.candidates)
    assert steps[0][0] == levels[i] and steps[0][1] < 1 and steps[1][0] == levels[i + 1] and steps[1][1] > 1
    assert all(0.9 * budget <= c.size <= budget for c in result.candidates), (budget, result.candidates)
    assert result.choice.size > sizes[i] * 1.05
    assert container.unpack(result.data).header.version == 3


def test_a_target_below_the_smallest_level_uses_coarser_steps(image):
    smallest = len(irncodec.encode(image, quality=zoo.levels("entropy", 2)[0], codec="entropy"))
    result = encode_to_target(image, 0.85 * smallest * 8 / (96 * 64), codec="entropy", scale=2)
    assert result.choice.step > 1 and result.choice.size <= 0.85 * smallest


def test_a_resampled_scale_can_be_asked_for(image):
    result = encode_to_target(image, 1.5, codec="jpeg", scale=1.5)
    assert [(c.codec, c.scale) for c in result.candidates] == [("jpeg", 1.5)]
    header = container.unpack(result.data).header
    assert header.network_size == (128, 86) and (header.lr_width, header.lr_height) == (64, 43)


def test_search_can_be_restricted_to_a_codec_and_scale(image):
    result = encode_to_target(image, 0.8, codec="webp", scale=4)
    assert [(c.codec, c.scale) for c in result.candidates] == [("webp", 4)]
    header = container.unpack(result.data).header
    assert (header.codec, header.scale) == ("webp", 4)
    assert irncodec.encode(image, target_bpp=0.8, codec="webp", scale=4) == result.data  # library argument


def _searched(monkeypatch, ranking, run=True):
    """Paths the search runs through the network when the Lanczos ranking gives ``ranking``'s
    PSNRs (``run`` False: recorded only, as if none fitted)."""
    searched = []
    real_search = ratecontrol._search_path
    monkeypatch.setattr(ratecontrol, "_lanczos_psnr", lambda source, codec, scale, *a: ranking.get((codec, scale)))

    def search(source, codec, scale, *args):
        searched.append((codec, scale))
        return real_search(source, codec, scale, *args) if run else ([], None)

    monkeypatch.setattr(ratecontrol, "_search_path", search)
    return searched


def test_shortlist_runs_the_network_on_the_best_ranked_paths_and_their_levels(image, monkeypatch):
    searched = _searched(monkeypatch, {("webp", 3): 30.0, ("jpeg", 1.25): 29.0, ("webp", 1.1): 28.0})
    result = encode_to_target(image, 1.0, shortlist=2)
    # The two best, and the entropy coder's levels at their networks' scales (4 for 3, 2 for 1.25).
    assert sorted(searched, key=str) == sorted([("webp", 3), ("jpeg", 1.25), ("entropy", 4), ("entropy", 2)],
                                               key=str)
    assert {(c.codec, c.scale) for c in result.candidates} <= set(searched)


@pytest.mark.parametrize(("ranking", "paths"), [
    ({("webp", 3): 30.0, ("jpeg", 1.25): 29.0}, [("entropy", 4), ("webp", 3)]),
    ({}, [(codec, s) for s in SEARCH_SCALES for codec in ("entropy", "jpeg", "webp")
          if codec != "entropy" or s in (2, 4)]),  # nothing fits without the network: every path
])
def test_shortlist_of_one(image, monkeypatch, ranking, paths):
    searched = _searched(monkeypatch, ranking, run=False)
    with pytest.raises(CodecError):
        encode_to_target(image, 1.0, shortlist=1)
    assert sorted(searched) == sorted(paths)


def test_lanczos_ranking_is_the_path_with_lanczos_in_the_networks_place(image):
    """The ranking's PSNR, recomputed by hand: the LR size the path stores, Lanczos both ways,
    the largest WebP quality whose payload plus the path's real overhead fits."""
    from irncodec.lr_codecs import get_codec
    from irncodec.pipeline import Source

    target = 1.0
    budget = int(target * 96 * 64 // 8)
    real = container.unpack(irncodec.encode(image, codec="webp", scale=1.5, quality=50))
    overhead = real.size - len(real.payload)
    lr = image.convert("RGB").resize((64, 43), Image.LANCZOS)
    webp = get_codec("webp")
    fits = [q for q in range(0, 101) if len(webp.encode(lr, q)) + overhead <= budget]
    decoded = webp.decode(webp.encode(lr, max(fits)), (64, 43)).convert("RGB").resize((96, 64), Image.LANCZOS)
    psnr = ratecontrol._lanczos_psnr(Source(image), "webp", 1.5, None, budget, "cpu")
    assert psnr == pytest.approx(_psnr(decoded, image.convert("RGB")), abs=1e-9)


@pytest.mark.parametrize("shortlist", [0, -1, 1.5, True, "3"])
def test_bad_shortlists_are_codec_errors(image, shortlist):
    with pytest.raises(CodecError, match="shortlist"):
        encode_to_target(image, 1.0, shortlist=shortlist)


def test_alpha_counts_towards_the_size_and_is_kept():
    rgba = photo_like(64, 48, seed=5).convert("RGBA")
    alpha = np.asarray(photo_like(64, 48, seed=6).convert("L"))
    rgba.putalpha(Image.fromarray(alpha))
    data = irncodec.encode(rgba, target_bpp=6.0)
    assert len(data) * 8 / (64 * 48) <= 6.0
    assert len(container.unpack(data).alpha) > 0
    out = irncodec.decode(data)
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[..., 3], alpha)


def test_impossible_target_is_one_clear_error(image):
    with pytest.raises(CodecError, match=r"fits 0.001 bits per pixel.*the smallest is [0-9.]+ bpp"):
        encode_to_target(image, 0.001)


@pytest.mark.parametrize("target", [0, -1, float("nan"), float("inf"), "x"])
def test_bad_targets_are_codec_errors(image, target):
    with pytest.raises(CodecError, match="target bits per pixel"):
        encode_to_target(image, target)


def test_target_excludes_quality_and_model(image):
    with pytest.raises(CodecError, match="picks the quality"):
        irncodec.encode(image, quality=50, target_bpp=1.0)


def test_cli_target_bpp(tmp_path, image):
    src, out = tmp_path / "in.png", tmp_path / "out.irn"
    image.save(src)
    runner = CliRunner()
    result = runner.invoke(main, ["encode", str(src), str(out), "--target-bpp", "1.0", "-v"])
    assert result.exit_code == 0, result.output
    assert "chose x" in result.output and out.stat().st_size * 8 / (96 * 64) <= 1.0
    bad = tmp_path / "bad.irn"
    result = runner.invoke(main, ["encode", str(src), str(bad), "--target-bpp", "0.001"])
    assert result.exit_code == 1 and "the smallest is" in result.output and not bad.exists()
    result = runner.invoke(main, ["encode", str(src), str(bad), "--target-bpp", "1", "-q", "50"])
    assert result.exit_code == 1 and "drop -q" in result.output and not bad.exists()
    result = runner.invoke(main, ["encode", str(src), str(bad), "--target-bpp", "-1"])
    assert result.exit_code == 2 and not bad.exists()


def test_largest_fitting_bisects_a_growing_size():
    sizes = {q: 10 * q for q in range(1, 101)}
    calls = []

    def size_of(q):
        calls.append(q)
        return sizes[q]

    assert largest_fitting(1, 100, size_of, 555) == 55
    assert len(calls) <= 9  # bisection, not a scan
    assert largest_fitting(1, 100, size_of, 5) is None
    assert largest_fitting(1, 100, size_of, 10**6) == 100
    assert largest_fitting(7, 7, size_of, 70) == 7
