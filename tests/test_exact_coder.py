"""The entropy coder in integers: its streams decode to the same LR image on every machine."""

from __future__ import annotations

import copy
import hashlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from irncodec import zoo
from irncodec.models import fixed_point as fx
from irncodec.models import lr_coder
from irncodec.models.lr_coder import LRHyperprior

from .conftest import make_tiny_model, photo_like


def trained_looking_coder(seed: int = 0) -> LRHyperprior:
    """A small coder whose post-filter does something (it starts at zero) and whose CDFs are built."""
    torch.manual_seed(seed)
    coder = LRHyperprior(channels=8, filter_channels=4).eval()
    for p in coder.post_filter.parameters():
        p.data.normal_(0, 0.1)
    coder.update(force=True)
    return coder


def exact_coder(seed: int = 0) -> LRHyperprior:
    """``trained_looking_coder`` switched to integer arithmetic."""
    coder = trained_looking_coder(seed)
    coder.make_exact()
    return coder


def lr_tensor(width: int = 72, height: int = 40) -> torch.Tensor:
    return torch.tensor(np.asarray(photo_like(width, height))).permute(2, 0, 1)[None].float() / 255


def digest(lr: torch.Tensor) -> str:
    return hashlib.sha256(lr.detach().numpy().tobytes()).hexdigest()


@pytest.mark.parametrize("step", [1.0, 1.3])
def test_exact_streams_decode_to_the_encoders_lr_image(step):
    coder = exact_coder()
    with torch.no_grad():
        coded = coder.compress(lr_tensor(), step)
        assert torch.equal(coder.decompress(coded.payload, (40, 72)), coded.lr_hat)


def test_exact_is_close_to_float_and_costs_no_bits_to_speak_of():
    float_coder, exact = trained_looking_coder(), exact_coder()
    lr = lr_tensor()
    with torch.no_grad():
        a, b = float_coder.compress(lr), exact.compress(lr)
    assert abs(len(a.payload) - len(b.payload)) <= 0.01 * len(a.payload) + 8
    assert (a.lr_hat - b.lr_hat).abs().max() < 2e-3  # rounded weights and activations, far below 1/255
    assert not torch.equal(a.lr_hat, b.lr_hat)  # it really is another computation


def test_lr_is_identical_under_threads_and_float64():
    coder = exact_coder()
    with torch.no_grad():
        coded = coder.compress(lr_tensor())
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            single = coder.decompress(coded.payload, (40, 72))
        finally:
            torch.set_num_threads(threads)
        double = coder.double().decompress(coded.payload, (40, 72))
    assert digest(single) == digest(coded.lr_hat) == digest(double.float())


_DECODE_LR = """
import hashlib, sys, torch
from irncodec import zoo
net = zoo.load_model(sys.argv[1])
payload = open(sys.argv[2], "rb").read()
with torch.no_grad():
    lr = net.lr_coder.decompress(payload, (40, 72))
print(hashlib.sha256(lr.numpy().tobytes()).hexdigest())
"""


def test_lr_is_identical_under_every_cpu_code_path(tmp_path):
    """ATen's and oneDNN's code paths (SSE4.1, AVX2, AVX-512) add in different orders; integers don't care.

    (The float coder's LR image differs between them here: oneDNN's SSE4.1
    convolutions round differently from its AVX2/AVX-512 ones.)
    """
    net = make_tiny_model(2, lr_coder="hyperprior", coder_channels=8, coder_filter_channels=4)
    assert net.lr_coder is not None
    for p in net.lr_coder.post_filter.parameters():
        p.data.normal_(0, 0.1)
    weights = tmp_path / "exact.safetensors"
    zoo.export(net, weights, exact_coder=True)
    model = zoo.load_model(str(weights))
    assert model.lr_coder is not None and model.lr_coder.exact
    with torch.no_grad():
        coded = model.lr_coder.compress(lr_tensor())
    payload = tmp_path / "lr.bin"
    payload.write_bytes(coded.payload)
    hashes = {}
    for capability, onednn in (("default", "SSE41"), ("avx2", "AVX2"), ("avx512", "AVX512_CORE")):
        env = dict(os.environ, ATEN_CPU_CAPABILITY=capability, ONEDNN_MAX_CPU_ISA=onednn, OMP_NUM_THREADS="1")
        run = subprocess.run([sys.executable, "-c", _DECODE_LR, str(weights), str(payload)], env=env,
                             capture_output=True, text=True, check=True)
        hashes[capability] = run.stdout.strip()
    assert set(hashes.values()) == {digest(coded.lr_hat)}, hashes


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here")
def test_lr_is_identical_on_a_gpu():
    coder = exact_coder()
    with torch.no_grad():
        coded = coder.compress(lr_tensor())
        on_gpu = coder.cuda().decompress(coded.payload, (40, 72)).cpu()
    assert digest(on_gpu) == digest(coded.lr_hat)


def test_exact_weights_have_their_own_fingerprint_and_files_say_so(tmp_path):
    net = make_tiny_model(2, lr_coder="hyperprior", coder_channels=8, coder_filter_channels=4)
    plain, exact = tmp_path / "plain.safetensors", tmp_path / "exact.safetensors"
    zoo.export(net, plain)
    zoo.export(net, exact, exact_coder=True)
    a, b = zoo.load_model(str(plain)), zoo.load_model(str(exact))
    assert a.lr_coder is not None and b.lr_coder is not None
    assert not a.lr_coder.exact and b.lr_coder.exact
    assert "lr_coder.exact_arithmetic" not in a.state_dict()  # float models' fingerprints stay as they were
    assert zoo.fingerprint(a) != zoo.fingerprint(b)
    with pytest.raises(zoo.ModelError, match="no entropy coder"):
        zoo.export(make_tiny_model(2), tmp_path / "x.safetensors", exact_coder=True)


def test_a_zoo_entry_can_run_a_shipped_coder_in_integers(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(zoo, "MANIFEST", tmp_path / "manifest.json")
    net = make_tiny_model(2, lr_coder="hyperprior", coder_channels=8, coder_filter_channels=4)
    zoo.export(net, tmp_path / "base.safetensors")
    zoo.register("base", "a float coder", {"iterations": 1, "parameters": 1})
    zoo.register_exact("base-exact", "base", "the same, in integers", {"variant_of": "base"})
    zoo._load_cached.cache_clear()
    try:
        base, exact = zoo.load_model("base"), zoo.load_model("base-exact")
        assert base.lr_coder is not None and exact.lr_coder is not None
        assert exact.lr_coder.exact and not base.lr_coder.exact
        assert zoo.available_models()["base-exact"]["file"] == "base.safetensors"
        with pytest.raises(zoo.ModelError, match="already shipped"):
            zoo.register_exact("base-exact", "base", "again", {})
    finally:
        zoo._load_cached.cache_clear()


# --- the integer layers ---------------------------------------------------------------------

def test_integer_layers_match_float_layers_to_their_rounding():
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.LeakyReLU(), nn.ConvTranspose2d(8, 4, 5, 2, 2, 1))
    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        expected = seq(x).double()
    got = fx.from_fixed(fx.run(fx.fixed_sequence(seq), fx.to_fixed(x)))
    assert got.shape == expected.shape
    assert (got - expected).abs().max() < 8 * 2.0**-fx.FRACTION_BITS
    assert torch.equal(got, torch.round(got * 2**fx.FRACTION_BITS) / 2**fx.FRACTION_BITS)  # on the grid


@pytest.mark.parametrize("first", ["conv", "transposed"])
def test_an_input_scale_is_folded_into_the_first_layer_only(first):
    """``in_scale`` multiplies the input channels of the first layer (its weights' dim 1 for a
    convolution, dim 0 for a transposed one), and a LeakyReLU at the very end is applied."""
    torch.manual_seed(1)
    head = nn.Conv2d(3, 6, 3, padding=1) if first == "conv" else nn.ConvTranspose2d(3, 6, 4, 2, 1)
    seq = nn.Sequential(head, nn.LeakyReLU(0.2), nn.Conv2d(6, 5, 3, padding=1), nn.LeakyReLU(0.1))
    scale = torch.tensor([0.5, 2.0, 1.5])
    x = torch.rand(1, 3, 8, 6) - 0.5
    with torch.no_grad():
        expected = seq(x * scale.view(1, 3, 1, 1)).double()
    got = fx.from_fixed(fx.run(fx.fixed_sequence(seq, scale), fx.to_fixed(x)))
    assert (got - expected).abs().max() < 8 * 2.0**-fx.FRACTION_BITS
    assert (expected < 0).any()  # the last LeakyReLU has negative inputs to act on


def test_layers_without_an_integer_version_say_why():
    for layer, error, message in (
            (nn.Linear(2, 2), TypeError, "no integer version of Linear"),
            (nn.Conv2d(2, 2, 3, padding="same"), ValueError, "padding mode 'same' has no integer version"),
            (nn.Conv2d(2, 2, 3, stride=(1, 2)), ValueError, "non-square (1, 2) has no integer version")):
        with pytest.raises(error) as info:
            fx.fixed_layer(layer, None)
        assert str(info.value) == message


def _ones(layer: nn.Module) -> nn.Module:
    """All weights 1: each becomes 2**13 in integers, so a fan-in of 2**16 reaches 2**53."""
    with torch.no_grad():
        layer.weight.fill_(1.0)
    return layer


def test_a_layer_that_could_overflow_float64_integers_is_refused():
    conv = _ones(nn.Conv2d(4096, 2, 5))  # fan-in 102400 weights of 2**13 times activations of 2**24: 2**53.6
    with pytest.raises(fx.ExactnessError) as info:
        fx.fixed_layer(conv, None)
    assert str(info.value) == "Conv2d with weights up to 1: integer sums could exceed 2**53"


def test_the_float64_limit_counts_each_output_from_a_sum_of_2_53_on():
    """The bound is the largest sum into one output (a transposed layer's weights are [in, out, k, k]),
    not all weights together; a sum that can reach 2**53 exactly is already refused."""
    fx.fixed_layer(_ones(nn.Conv2d(4096, 2, 3)), None)  # 36864 per output, 73728 in all
    fx.fixed_layer(_ones(nn.Conv2d(4095, 1, 4)), None)  # 65520 * 2**13 * 2**24 < 2**53
    with pytest.raises(fx.ExactnessError):
        fx.fixed_layer(_ones(nn.Conv2d(4096, 1, 4)), None)  # 65536 * 2**13 * 2**24 == 2**53
    fx.fixed_layer(_ones(nn.ConvTranspose2d(1, 8192, 3)), None)  # 9 per output, 73728 per input
    with pytest.raises(fx.ExactnessError) as info:
        fx.fixed_layer(_ones(nn.ConvTranspose2d(8192, 1, 3)), None)
    assert str(info.value).startswith("ConvTranspose2d with weights up to 1:")


def test_a_half_precision_layer_converts_as_its_float32_copy():
    """Its bias is scaled in float64, where float16 would overflow (20 * 2**12 > 65504)."""
    torch.manual_seed(2)
    conv = nn.Conv2d(2, 3, 3)
    with torch.no_grad():
        conv.bias.copy_(torch.tensor([20.0, -0.3, 1e-3]))
    half = fx.fixed_layer(copy.deepcopy(conv).half(), 0.2)
    full = fx.fixed_layer(copy.deepcopy(conv).half().float(), 0.2)
    assert torch.equal(half.bias, full.bias) and torch.equal(half.weight, full.weight)
    assert half.bias.dtype == torch.float64 and half.bias[0] == 20 * 2**fx.FRACTION_BITS


def test_activations_are_clamped_to_2_24_units_both_ways():
    limit = 2.0**fx.ACTIVATION_BITS
    x = torch.tensor([-2 * limit, -limit, -1.0, 0.0, 1.0, limit, 2 * limit], dtype=torch.float64)
    assert fx.clamp(x).tolist() == [-limit, -limit, -1.0, 0.0, 1.0, limit, limit]
    assert fx.to_fixed(torch.tensor([5000.0, -5000.0])).tolist() == [limit, -limit]  # 4096 in real terms


def test_rounding_is_half_up_and_exact():
    x = torch.tensor([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0, 2.0**50 + 2], dtype=torch.float64)
    assert fx.round_shift(x, 1).tolist() == [-1.0, -1.0, 0.0, 1.0, 1.0, 2.0, 2.0**49 + 1]


@pytest.mark.parametrize("x, bits", [(1.0, "4005bf0a8b145768"), (-0.5, "3fe368b2fc6f960c"),
                                     (3.7, "4044394144eeec80"), (-9.25, "3f1931f19c066a3c")])
def test_exact_exp_gives_the_same_bits_everywhere(x, bits):
    value = fx.exact_exp(x)
    assert np.float64(value).tobytes()[::-1].hex() == bits  # big-endian IEEE-754 bits
    assert abs(value - math.exp(x)) <= 4 * math.ulp(math.exp(x))


@pytest.mark.parametrize("step", [2.0, 1.3])
def test_the_exact_coders_step_divides_its_means_and_scales(step):
    """At a step, the hyperprior's means and scales are in units of the step: the means are
    those at step 1 divided by it, and the scales pick the table entry of scale / step."""
    coder = exact_coder()
    torch.manual_seed(4)
    z_hat = torch.round(torch.randn(1, coder.entropy_bottleneck.channels, 3, 5) * 3)
    indexes_1, means_1 = coder._exact_gaussian_params(z_hat, 1.0)
    indexes, means = coder._exact_gaussian_params(z_hat, step)
    assert torch.equal(means, means_1 / step)
    assert (indexes <= indexes_1).all() and (indexes < indexes_1).any()  # smaller scales, lower entries


@pytest.mark.parametrize("step", [2.0, 1.3])
def test_the_float_coders_step_divides_its_means_and_scales(step):
    """The same for the float coder: the hyperprior's output divided by the step."""
    coder = trained_looking_coder()
    torch.manual_seed(4)
    z_hat = torch.round(torch.randn(1, coder.entropy_bottleneck.channels, 3, 5) * 3)
    with torch.no_grad():
        means_1, scales_1 = coder.h_s(z_hat).chunk(2, 1)
        indexes, means = coder._gaussian_params(z_hat, step)
    assert torch.equal(means, means_1 / step)
    assert torch.equal(indexes, coder.gaussian_conditional.build_indexes(scales_1 / step))


def test_the_integer_layers_are_built_once_until_a_weight_changes():
    coder = exact_coder()
    first = coder._fixed()
    assert coder._fixed() is first  # kept: building them costs a pass over every weight
    with torch.no_grad():
        coder.log_step.add_(0.01)  # an in-place change bumps the version counter
    rebuilt = coder._fixed()
    assert rebuilt is not first and not torch.equal(rebuilt[1][0].weight, first[1][0].weight)
    log_steps = coder.log_step.detach().double().flatten().tolist()
    steps = torch.tensor([fx.exact_exp(lr_coder.STEP_GAIN * v) for v in log_steps], dtype=torch.float64)
    assert torch.equal(rebuilt[1][0].weight, fx.fixed_layer(coder.synthesis, None, steps).weight)


def test_the_exact_synthesis_clamps_to_black_and_white_exactly():
    coder = exact_coder()
    torch.manual_seed(5)
    y = torch.randn(1, lr_coder.LATENTS, 4, 6, dtype=torch.float64) * 20  # far outside the image range
    lr = coder.synthesize(y, (16, 24))
    assert lr.dtype == torch.float32 and lr.shape == (1, 3, 16, 24)
    assert lr.min() == 0 and lr.max() == 1
    assert (lr == 0).any() and (lr == 1).any() and ((lr > 0) & (lr < 1)).any()


def test_strips_equal_the_whole_image_for_the_exact_coder(monkeypatch):
    coder = exact_coder()
    y = torch.randn(1, lr_coder.LATENTS, 10, 6, dtype=torch.float64)
    whole = coder.synthesize(y, (40, 24))
    monkeypatch.setattr(lr_coder, "STRIP", 7)
    assert torch.equal(coder.synthesize(y, (40, 24)), whole)


def test_every_shipped_rate_level_decodes_the_same_everywhere():
    for name in zoo.LEVEL_MODELS["entropy"].values():
        model = zoo.load_model(name)
        assert model.lr_coder is not None and model.lr_coder.exact, name
