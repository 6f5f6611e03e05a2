"""The IRN model: exact invertibility, shapes, sizes of the paper variants."""

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


@pytest.mark.parametrize("shape", [(1, 3, 15, 16), (1, 1, 16, 16), (3, 16, 16)])
def test_bad_input_shape_rejected(shape):
    with pytest.raises(ValueError):
        IRN(IRNConfig(scale=2, blocks_per_stage=1, growth=4))(torch.rand(shape))


@pytest.mark.parametrize("values", [{"scale": 3}, {"growth": 0}, {"clamp": -1}])
def test_bad_config_rejected(values):
    with pytest.raises(ValueError):
        IRNConfig(**values)


def test_config_round_trip_and_unknown_keys():
    cfg = IRNConfig(scale=4, blocks_per_stage=3, growth=12)
    assert IRNConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        IRNConfig.from_dict({"scale": 2, "depth": 3})
