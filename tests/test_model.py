"""The IRN model: exact invertibility, shapes, sizes of the paper variants."""

import math

import pytest
import torch

from irncodec.models import IRN, IRNConfig, count_parameters


def randomised(model: IRN) -> IRN:
    """Zero-initialised last convs make a fresh model a plain Haar transform; perturb them."""
    gen = torch.Generator().manual_seed(1)
    for p in model.parameters():
        if p.requires_grad:
            p.data.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return model


@pytest.mark.parametrize("scale", [2, 4])
def test_forward_inverse_reconstructs_input(scale):
    model = randomised(IRN(IRNConfig(scale=scale, blocks_per_stage=2, growth=8))).double()
    x = torch.rand(2, 3, 8 * scale, 12 * scale, dtype=torch.float64)
    lr, z = model(x)
    assert lr.shape == (2, 3, 8, 12)
    assert z.shape == (2, 3 * scale**2 - 3, 8, 12)
    assert torch.allclose(model.inverse(lr, z), x, atol=1e-12)


def test_float32_inverse_is_close():
    model = randomised(IRN(IRNConfig(scale=2, blocks_per_stage=3, growth=8)))
    x = torch.rand(1, 3, 32, 32)
    assert (model.inverse(*model(x)) - x).abs().max() < 1e-5


def test_fresh_model_lr_is_box_downscale():
    """At initialisation every coupling block is the identity, so LR = 2x2 mean."""
    model = IRN(IRNConfig(scale=2, blocks_per_stage=2, growth=8))
    x = torch.rand(1, 3, 16, 16)
    lr, _ = model(x)
    assert torch.allclose(lr, torch.nn.functional.avg_pool2d(x, 2), atol=1e-6)


def test_paper_sizes():
    assert round(count_parameters(IRN(IRNConfig(scale=2))) / 1e6, 2) == 1.67
    assert round(count_parameters(IRN(IRNConfig(scale=4))) / 1e6, 2) == 4.36


def test_sample_z_shape_and_temperature_zero():
    model = IRN(IRNConfig(scale=4, blocks_per_stage=1, growth=4))
    lr = torch.rand(1, 3, 5, 7)
    assert model.sample_z(lr).shape == (1, 45, 5, 7)
    assert torch.count_nonzero(model.sample_z(lr, temperature=0)) == 0
    assert model.upscale(lr, temperature=0).shape == (1, 3, 20, 28)
    # no temperature is temperature 1: the prior itself
    draws = [model.sample_z(lr, t, torch.Generator().manual_seed(4)) for t in (None, 1.0, 2.0)]
    assert torch.equal(draws[0], draws[1]) and not torch.allclose(draws[0], draws[2])


@pytest.mark.parametrize("shape, message", [
    ((1, 3, 15, 16), "height and width must be multiples of 2, got (15, 16)"),
    ((1, 3, 16, 17), "height and width must be multiples of 2, got (16, 17)"),
    ((1, 1, 16, 16), "expected a [N,3,H,W] tensor, got shape (1, 1, 16, 16)"),
    ((3, 16, 16), "expected a [N,3,H,W] tensor, got shape (3, 16, 16)"),
])
def test_bad_input_shape_rejected(shape, message):
    with pytest.raises(ValueError) as info:
        IRN(IRNConfig(scale=2, blocks_per_stage=1, growth=4))(torch.rand(shape))
    assert str(info.value) == message


def test_loading_weights_is_strict_unless_asked_otherwise():
    """As for any nn.Module: a missing key is an error, unless ``strict=False``."""
    model = IRN(IRNConfig(scale=2, blocks_per_stage=1, growth=4))
    partial = dict(list(model.state_dict().items())[1:])
    with pytest.raises(RuntimeError, match="Missing key"):
        model.load_state_dict(partial)
    result = model.load_state_dict(partial, strict=False)
    assert len(result.missing_keys) == 1 and not result.unexpected_keys
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(weights, assign=True)  # the tensors themselves, not copies
    name, tensor = next(iter(model.named_parameters()))
    assert tensor.data_ptr() == weights[name].data_ptr()


@pytest.mark.parametrize("values, message", [
    ({"scale": 3}, "scale must be 2 or 4, got 3"),
    ({"growth": 0}, "blocks_per_stage and growth must be positive"),
    ({"blocks_per_stage": 0}, "blocks_per_stage and growth must be positive"),
    ({"clamp": -1}, "clamp must be positive"),
    ({"clamp": 0}, "clamp must be positive"),
    ({"z_temperature": 0}, "z_temperature must be positive"),
    ({"architecture": "sainx"}, "architecture must be one of ('irn', 'sain'), got 'sainx'"),
    ({"simulator_blocks": 1}, "simulator_blocks must be >= 0, and 0 unless architecture is 'sain'"),
    ({"architecture": "sain", "simulator_blocks": -1},
     "simulator_blocks must be >= 0, and 0 unless architecture is 'sain'"),
    ({"z_prior": "laplace"}, "z_prior must be one of ('gaussian', 'mixture'), got 'laplace'"),
    ({"mixture_components": 0}, "mixture_components must be positive"),
    ({"lr_coder": "ans"}, "lr_coder must be one of ('none', 'hyperprior'), got 'ans'"),
    ({"coder_channels": 0}, "coder_channels and coder_filter_channels must be positive"),
    ({"coder_filter_channels": 0}, "coder_channels and coder_filter_channels must be positive"),
    ({"decode_temperature": -0.5}, "decode_temperature must be >= 0"),
    ({"growth": 2.0}, "growth must be an integer, got 2.0"),
    ({"growth": True}, "growth must be an integer, got True"),
    ({"growth": 4097}, "growth = 4097 is out of range (at most 4096)"),
    ({"blocks_per_stage": -4097}, "blocks_per_stage = -4097 is out of range (at most 4096)"),
    ({"clamp": float("nan")}, "clamp must be a finite number, got nan"),
    ({"clamp": False}, "clamp must be a finite number, got False"),
    ({"clamp": "1"}, "clamp must be a finite number, got '1'"),
    ({"architecture": 1}, "architecture must be a string, got 1"),
])
def test_bad_config_rejected(values, message):
    with pytest.raises(ValueError) as info:
        IRNConfig(**values)
    assert str(info.value) == message


def test_the_smallest_configs_are_allowed():
    """Each lower bound itself is a valid value."""
    config = IRNConfig(blocks_per_stage=1, growth=1, clamp=1e-6, z_temperature=1e-6, mixture_components=1,
                       coder_channels=1, coder_filter_channels=1, decode_temperature=0)
    assert config.growth == 1 and IRNConfig(growth=4096).growth == 4096
    assert IRNConfig(architecture="sain", simulator_blocks=0).simulator_blocks == 0


def test_config_round_trip_and_unknown_keys():
    cfg = IRNConfig(scale=4, blocks_per_stage=3, growth=12)
    assert IRNConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        IRNConfig.from_dict({"scale": 2, "depth": 3})


SAIN = dict(architecture="sain", simulator_blocks=2, z_prior="mixture", mixture_components=3, z_temperature=0.1)


@pytest.mark.parametrize("scale", [2, 4])
def test_sain_inverts_its_simulated_lr_exactly_and_stores_the_tap(scale):
    model = randomised(IRN(IRNConfig(scale=scale, blocks_per_stage=2, growth=8, **SAIN))).double()
    x = torch.rand(2, 3, 8 * scale, 8 * scale, dtype=torch.float64)
    out = model.rescale(x)
    assert torch.allclose(model.inverse(out.lr_simulated, out.z), x, atol=1e-12)
    assert not torch.allclose(out.lr, out.lr_simulated)  # the stored LR is the E-InvBlock's tap
    lr, z = model(x)
    assert torch.equal(lr, out.lr) and torch.equal(z, out.z)


def test_plain_irn_has_no_simulator_and_forward_is_rescale():
    model = randomised(IRN(IRNConfig(scale=2, blocks_per_stage=1, growth=4)))
    out = model.rescale(torch.rand(1, 3, 8, 8))
    assert out.lr is out.lr_simulated


def test_old_configs_without_sain_fields_load():
    config = IRNConfig.from_dict({"scale": 2, "blocks_per_stage": 4, "growth": 16, "clamp": 1.0, "z_temperature": 0.1})
    assert config.architecture == "irn" and config.z_prior == "gaussian"


def test_temperature_scales_the_spread_around_the_prior_mean():
    from irncodec.models.priors import GaussianPrior, MixturePrior

    like = torch.zeros(1)
    gen = lambda: torch.Generator().manual_seed(3)
    gaussian = GaussianPrior(0.1)
    assert abs(gaussian.sample((200_000,), like).std().item() - 0.1) < 2e-3
    assert torch.allclose(gaussian.sample((10,), like, 0.5, gen()), gaussian.sample((10,), like, 1.0, gen()) * 0.5)
    mixture = MixturePrior(3, 0.1)
    with torch.no_grad():
        mixture.means.copy_(torch.tensor([-1.0, 0.0, 2.0]))
        mixture.log_scales.fill_(-5.0)
        mixture.logits.copy_(torch.log(torch.tensor([0.2, 0.3, 0.5])))
    mean = mixture.mean((4,), like)
    assert torch.allclose(mean, torch.full((4,), 0.8))
    draws = mixture.sample((100_000,), like, 1.0, gen())
    for centre, weight in [(-1.0, 0.2), (0.0, 0.3), (2.0, 0.5)]:
        assert abs(((draws - centre).abs() < 0.1).float().mean().item() - weight) < 0.01
    assert torch.equal(mixture.sample((5,), like, 0.0), mean[:1].expand(5))
    half = mixture.sample((50,), like, 0.5, gen())
    assert torch.allclose(half, mean[:1] + 0.5 * (mixture.sample((50,), like, 1.0, gen()) - mean[:1]))


def test_mixture_nll_is_the_density_of_a_one_component_gaussian():
    from irncodec.models.priors import MixturePrior

    prior = MixturePrior(1, 0.5)
    z = torch.randn(2, 3, 4, 4)
    expected = -torch.distributions.Normal(0.0, 0.5).log_prob(z).sum() / 2
    assert torch.allclose(prior.nll(z), expected, atol=1e-4)


def test_mixture_nll_matches_torch_distributions():
    """Against torch.distributions' mixture, with off-centre means, unequal weights and a
    component whose scale is below the clamp (log sigma -9.5 is used as -9)."""
    from irncodec.models.priors import MixturePrior

    prior = MixturePrior(3, 0.1)
    log_scales = torch.tensor([-1.0, -2.0, -9.5])
    with torch.no_grad():
        prior.means.copy_(torch.tensor([-0.3, 0.2, 0.05]))
        prior.log_scales.copy_(log_scales)
        prior.logits.copy_(torch.tensor([0.5, -1.0, 0.25]))
    z = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1)) * 0.3
    z[0, 0, 0, :2] = 0.05  # on the narrow component, where the clamp decides the density
    reference = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=prior.logits.detach()),
        torch.distributions.Normal(prior.means.detach(), log_scales.clamp(min=-9.0).exp()))
    expected = -reference.log_prob(z).sum() / 2
    assert torch.allclose(prior.nll(z), expected, rtol=1e-5)


@pytest.mark.parametrize("batch", [1, 2])
def test_inference_gives_the_values_of_the_training_path(batch):
    """Without autograd the dense blocks write into one channels-last buffer instead of
    concatenating; both ways through the network the values must be the training path's
    up to rounding (measured: 3e-15 in float64; a wrong channel offset or a skipped
    feature is off by 1e-2 or more)."""
    model = randomised(IRN(IRNConfig(scale=2, blocks_per_stage=2, growth=8, architecture="sain",
                                     simulator_blocks=1))).double()
    x = torch.rand(batch, 3, 24, 20, dtype=torch.float64)
    lr, z = model(x)
    hr = model.inverse(lr, z)
    with torch.inference_mode():
        fast = (*model(x), model.inverse(lr, z))
    assert lr.requires_grad  # the reference really took the autograd path
    for value, reference in zip(fast, (lr, z, hr)):
        assert (value - reference).abs().max() < 1e-12


def test_loading_the_network_does_not_import_scipy_stats_and_freia_still_works():
    """FrEIA's AllInOneBlock imports scipy.stats (half a second of every start); irncodec
    defers it, and the block must still work when someone uses it."""
    import subprocess
    import sys

    code = ("import sys, irncodec.models, torch\n"
            "assert 'scipy.stats' not in sys.modules\n"
            "from FrEIA.modules import AllInOneBlock\n"
            "from irncodec.models.blocks import dense_subnet\n"
            "block = AllInOneBlock([(4, 8, 8)], subnet_constructor=dense_subnet(4), permute_soft=True)\n"
            "import scipy.stats\n"
            "assert hasattr(scipy.stats, 'norm') and 'scipy.stats' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    # scipy.stats imported first stays the package it is
    code = ("import sys, scipy.stats as s\n"
            "import irncodec.models\n"
            "from FrEIA.modules import all_in_one_block as a\n"
            "assert sys.modules['scipy.stats'] is s and a.special_ortho_group is s.special_ortho_group\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("kind", ["IRNCouplingBlock", "EnhancedCouplingBlock"])
def test_coupling_blocks_run_forward_unless_asked_to_invert(kind):
    """FrEIA's calling convention: ``block(x)`` is the forward pass, ``rev=True`` its inverse."""
    from irncodec.models import blocks

    block = randomised(getattr(blocks, kind)([(12, 6, 6)])).double()
    x = torch.rand(2, 12, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    (y,), log_jac = block([x])
    (y_forward,), log_jac_forward = block([x], rev=False)
    assert torch.equal(y, y_forward) and torch.equal(log_jac, log_jac_forward)
    (back,), log_jac_back = block([y], rev=True)
    # one log-determinant per image of the batch, each undone by the inverse
    assert log_jac.shape == log_jac_back.shape == (2,) and not torch.allclose(log_jac[0], log_jac[1])
    assert torch.allclose(back, x, atol=1e-12) and torch.allclose(log_jac_back, -log_jac)
    assert not torch.allclose(y, x, atol=1e-3)  # the block does transform its input


def test_gaussian_nll_is_irns_distribution_loss():
    """Sum of z^2 per image, averaged over the batch (IRN's L_distr, up to its constant)."""
    from irncodec.models.priors import GaussianPrior

    z = torch.tensor([1.0, -2.0, 0.5, 3.0]).view(2, 1, 2, 1)  # images: 1 + 4, 0.25 + 9
    assert GaussianPrior(0.5).nll(z).item() == pytest.approx((5 + 9.25) / 2)


def test_mixture_starts_spread_over_one_std_and_needs_a_component():
    from irncodec.models.priors import MixturePrior

    for components, means in ((1, [0.0]), (2, [-0.1, 0.1]), (3, [-0.1, 0.0, 0.1])):
        prior = MixturePrior(components, 0.1)
        assert torch.allclose(prior.means, torch.tensor(means))
        assert torch.allclose(prior.log_scales, torch.full((components,), math.log(0.1)))
        assert torch.equal(prior.logits, torch.zeros(components))
    with pytest.raises(ValueError) as info:
        MixturePrior(0, 0.1)
    assert str(info.value) == "a mixture needs at least one component"


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_mixture_samples_in_the_dtype_asked_for(dtype):
    """Mean and draws come in ``like``'s dtype (the network's), temperature 1 by default."""
    from irncodec.models.priors import MixturePrior

    prior = MixturePrior(3, 0.1)
    like = torch.zeros(1, dtype=dtype)
    assert prior.mean((4,), like).dtype == dtype
    draw = prior.sample((64,), like, generator=torch.Generator().manual_seed(5))
    assert draw.dtype == dtype
    assert torch.equal(draw, prior.sample((64,), like, 1.0, torch.Generator().manual_seed(5)))


def test_mixture_pick_above_the_rounded_cdf_takes_the_last_component(monkeypatch):
    """The cumulative weights may sum to just under 1 in float32; a uniform pick above that
    total still picks a component (the last) instead of indexing past the end."""
    from irncodec.models.priors import MixturePrior

    prior = MixturePrior(3, 0.1)
    with torch.no_grad():
        prior.logits.copy_(torch.tensor([1.4565025568008423, 0.9398099184036255, 0.7748488187789917]))
        prior.means.copy_(torch.tensor([-5.0, 0.0, 5.0]))
        prior.log_scales.fill_(-20.0)
    cdf = torch.cumsum(torch.softmax(prior.logits, 0), 0)
    top = torch.tensor(1.0).nextafter(torch.tensor(0.0))  # the largest float32 below 1
    assert cdf[-1] < top  # this choice of weights rounds its total down
    monkeypatch.setattr(torch, "rand", lambda shape, generator=None, **kwargs: torch.full(shape, float(top), **kwargs))
    draw = prior.sample((4,), torch.zeros(1))
    assert torch.allclose(draw, torch.full((4,), 5.0), atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64])
def test_gaussian_samples_in_the_dtype_asked_for(dtype):
    from irncodec.models.priors import GaussianPrior

    draw = GaussianPrior(0.5).sample((64,), torch.zeros(1, dtype=dtype))
    assert draw.dtype == dtype and 0 < draw.std().item() < 1


def test_rescaling_does_not_compute_log_determinants(monkeypatch):
    """Nothing in irncodec uses the log-determinants: neither direction asks the blocks
    for them."""
    model = randomised(IRN(IRNConfig(scale=2, blocks_per_stage=2)))
    asked = []
    for block in model.inn.module_list:
        forward = block.forward

        def spy(x, *args, _forward=forward, **kwargs):
            asked.append(kwargs.get("jac", True))
            return _forward(x, *args, **kwargs)

        monkeypatch.setattr(block, "forward", spy)
    lr = model.rescale(torch.rand(1, 3, 8, 8)).lr
    hr = model.inverse(lr, model.sample_z(lr, 0))
    assert hr.shape == (1, 3, 8, 8)
    assert len(asked) == 2 * len(model.inn.module_list) and not any(asked)


def test_coupling_block_defaults_and_split_range():
    """IRN's block by default: the 3 LR channels split off, scales bounded by e^±1, dense
    subnets of growth 32; a split must leave channels on both sides."""
    from irncodec.models.blocks import DenseBlock, IRNCouplingBlock

    block = IRNCouplingBlock([(12, 6, 6)])
    assert (block.split_len, block.clamp) == (3, 1.0)
    assert isinstance(block.phi, DenseBlock) and block.phi.growth == 32
    assert block.phi.convs[0].in_channels == 9 and block.eta.out.out_channels == 9
    assert DenseBlock(3, 5).growth == 32
    # FrEIA's convention: the block records the shapes of its inputs and conditions
    assert block.dims_in == [(12, 6, 6)] and block.dims_c == []
    assert IRNCouplingBlock([(12, 6, 6)], [(2, 6, 6)]).dims_c == [(2, 6, 6)]
    for split_len in (1, 11):
        assert IRNCouplingBlock([(12, 6, 6)], split_len=split_len).split_len == split_len
    for split_len in (0, 12):
        with pytest.raises(ValueError) as info:
            IRNCouplingBlock([(12, 6, 6)], split_len=split_len)
        assert str(info.value) == f"split_len must be in (0, 12), got {split_len}"


def test_gradients_reach_every_weight_of_the_network():
    """With autograd on, the subnets keep their inputs for the backward pass (the in-place
    inference path would overwrite them), and every weight gets a gradient."""
    model = randomised(IRN(IRNConfig(scale=2, blocks_per_stage=2, growth=8))).double()
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    lr, z = model(x)
    (lr.square().sum() + z.square().sum()).backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing
    weight = model.inn.module_list[1].phi.convs[0].weight
    direction = torch.randn(weight.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():  # the gradient is the derivative: a central difference along one direction
        losses = []
        for sign in (1, -1):
            weight.add_(sign * 1e-6 * direction)
            lr_, z_ = model(x)
            losses.append((lr_.square().sum() + z_.square().sum()).item())
            weight.sub_(sign * 1e-6 * direction)
    numeric = (losses[0] - losses[1]) / 2e-6
    assert (weight.grad * direction).sum().item() == pytest.approx(numeric, rel=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here")
def test_inference_on_a_gpu_matches_the_cpu():
    """The in-place subnet path allocates its buffer on the input's device."""
    # float64: no TF32 convolutions on the GPU, so both devices agree to rounding
    model = randomised(IRN(IRNConfig(scale=2, blocks_per_stage=2, growth=8))).double().eval()
    x = torch.rand(1, 3, 16, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        lr, z = model(x)
        model.cuda()
        lr_gpu, z_gpu = model(x.cuda())
        back = model.inverse(lr_gpu, z_gpu).cpu()
    assert torch.allclose(lr_gpu.cpu(), lr, atol=1e-10) and torch.allclose(z_gpu.cpu(), z, atol=1e-10)
    assert torch.allclose(back, x, atol=1e-10)
