"""Seed a larger network with a trained smaller one, so that it starts exactly where that one is.

Training a paper-size model from scratch costs far more steps than a short GPU
loan gives (it starts several dB below the shipped small models). Growing a
trained model instead keeps its function and adds capacity around it:

- **deeper**: each stage gets extra coupling blocks. A fresh block is the
  identity (its subnets' last convolutions start at zero), so the trained
  blocks keep their order: all but each stage's last take the first places, the
  last (for SAIN, the E-InvBlock) stays last, and the new ones sit in between;
- **wider**: each dense subnet's convolutions get more filters (``growth``).
  The trained filters keep their weights, moved to where their input channels
  now are; the new filters start as a fresh network's do, but every weight that
  reads a new feature into a trained filter or into the subnet's output starts
  at zero, so the new features change nothing until training moves them.

The prior, the simulator blocks and the LR entropy coder do not change size;
their weights are copied as they are.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from ..models import IRN
from ..models.blocks import DENSE_LAYERS

#: A dense-subnet parameter: (module index, subnet, "convs.<i>" or "out", weight|bias).
_SUBNET_KEY = re.compile(r"inn\.module_list\.(\d+)\.(\w+)\.(convs\.\d+|out)\.(weight|bias)")
_MODULE_KEY = re.compile(r"inn\.module_list\.(\d+)\.(.+)")


def can_grow(small: IRN, large: IRN) -> bool:
    """Whether ``large`` differs from ``small`` only by as many or more blocks per stage and growth."""
    a, b = small.config, large.config
    return (b.blocks_per_stage >= a.blocks_per_stage and b.growth >= a.growth
            and (b.blocks_per_stage, b.growth) != (a.blocks_per_stage, a.growth))


def module_map(small: IRN, large: IRN) -> dict[int, int]:
    """Index in ``large.inn`` of each module of ``small.inn`` (Haar steps, coupling and simulator blocks)."""
    old, new = small.config.blocks_per_stage, large.config.blocks_per_stage
    mapping = {}
    for stage in range(small.config.stages):
        mapping[stage * (old + 1)] = stage * (new + 1)  # the Haar step
        for block in range(old):
            place = new - 1 if block == old - 1 else block
            mapping[stage * (old + 1) + 1 + block] = stage * (new + 1) + 1 + place
    first_old, first_new = small.config.stages * (old + 1), large.config.stages * (new + 1)
    for block in range(small.config.simulator_blocks):
        mapping[first_old + block] = first_new + block
    return mapping


def _input_channels(inputs: int, old_growth: int, new_growth: int, features: int) -> list[int]:
    """Where each input channel of a trained conv is in the grown one: the subnet's own input
    (``inputs`` channels) stays first, then trained feature ``k``'s channels start at
    ``inputs + k * new_growth``."""
    return list(range(inputs)) + [inputs + k * new_growth + j for k in range(features) for j in range(old_growth)]


def _widened(part: str, kind: str, old: Tensor, fresh: Tensor, old_growth: int, new_growth: int) -> Tensor:
    """One dense-subnet parameter of the grown model from its trained counterpart."""
    if kind == "bias":
        out = fresh.clone()
        out[: old.shape[0]] = old
        return out
    is_output = part == "out"  # the output conv reads the subnet's input and every feature
    features = DENSE_LAYERS if is_output else int(part.split(".")[1])
    inputs = old.shape[1] - features * old_growth
    channels = _input_channels(inputs, old_growth, new_growth, features)
    out = torch.zeros_like(fresh) if is_output else fresh.clone()
    out[: old.shape[0]] = 0  # trained filters (or the output) read no new feature
    out[: old.shape[0], channels] = old
    return out


def grow(small: IRN, large: IRN) -> None:
    """Load ``small``'s trained weights into the larger ``large`` (freshly initialised) in place;
    afterwards ``large`` computes what ``small`` does, up to floating-point rounding."""
    if not can_grow(small, large):
        raise ValueError(f"{large.config} is not a grown {small.config}")
    mapping = module_map(small, large)
    old_growth, new_growth = small.config.growth, large.config.growth
    target = large.state_dict()
    grown: dict[str, Tensor] = {}
    for key, value in small.state_dict().items():
        subnet = _SUBNET_KEY.fullmatch(key)
        module = _MODULE_KEY.fullmatch(key)
        if module is None:  # prior, LR coder: the same size in both
            grown[key] = value
            continue
        new_key = f"inn.module_list.{mapping[int(module.group(1))]}.{module.group(2)}"
        if subnet is None:  # the Haar step's fixed weights
            grown[new_key] = value
        else:
            grown[new_key] = _widened(subnet.group(3), subnet.group(4), value, target[new_key],
                                      old_growth, new_growth)
    unknown = [k for k in grown if k not in target]
    if unknown:
        raise ValueError(f"the grown model has no {unknown[0]}")
    large.load_state_dict({**target, **grown})
