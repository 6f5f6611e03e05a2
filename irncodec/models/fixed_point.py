"""Integer arithmetic for the entropy coder's decoder side, so streams decode the same everywhere.

A hyperprior coder picks each latent's probability table from a scale that a
network computes. In floating point, that scale depends on the order of the
sums, which differs between CPUs' vector units, thread counts, BLAS libraries
and GPUs; where it lands on the other side of a table boundary, the decoder
picks another table and the rest of the stream decodes to garbage. Following
Balle et al., "Integer networks for data compression with latent-variable
models" (ICLR 2019), the layers the decoder runs are evaluated here in
integers: weights rounded to ``WEIGHT_BITS`` significant bits per layer,
activations on a grid of ``2**-FRACTION_BITS``, rescaled and rounded after each
layer. The integers are carried in float64 tensors, so torch's ordinary
convolutions compute them; every product and partial sum is an integer below
2**53 (checked when the layers are built), so each is exact whatever order the
hardware adds in, and the result is the same bit for bit on every machine.

Everything is derived from the float weights with exactly rounded operations
only (multiplication by powers of two, rounding, IEEE-754 basic arithmetic),
so the integer layers themselves are the same on every machine too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Activations are integers in units of 2**-FRACTION_BITS.
FRACTION_BITS = 12
#: Each layer's weights are rounded to integers of at most this many bits (and a sign).
WEIGHT_BITS = 14
#: Activations are clamped to +-2**ACTIVATION_BITS units (4096 in real terms), far
#: beyond what the trained networks produce, so the exactness bound below holds.
ACTIVATION_BITS = FRACTION_BITS + 12
#: Integers up to this are exact in float64.
EXACT_LIMIT = 2.0**53
#: LeakyReLU's slope on negatives, in units of 2**-SLOPE_BITS.
SLOPE_BITS = 16


class ExactnessError(ValueError):
    """A layer's integer sums could exceed what float64 holds exactly."""


@dataclass(frozen=True)
class FixedLayer:
    """One convolution (or transposed convolution) in integers, then an optional LeakyReLU."""

    weight: Tensor  # float64 integers, [out, in, k, k] (conv) or [in, out, k, k] (transposed)
    bias: Tensor | None  # float64 integers in activation units, [out]
    shift: int  # the weights are real weights times 2**shift
    transposed: bool
    stride: int
    padding: int
    output_padding: int
    slope: int | None  # LeakyReLU slope in units of 2**-SLOPE_BITS, None for no activation

    def __call__(self, x: Tensor) -> Tensor:
        """Integer activations in, integer activations out (both float64 tensors)."""
        if self.transposed:
            acc = F.conv_transpose2d(x, self.weight, None, self.stride, self.padding, self.output_padding)
        else:
            acc = F.conv2d(x, self.weight, None, self.stride, self.padding)
        out = round_shift(acc, self.shift)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        if self.slope is not None:
            out = torch.where(out < 0, round_shift(out * self.slope, SLOPE_BITS), out)
        return clamp(out)


def round_shift(x: Tensor, bits: int) -> Tensor:
    """``x / 2**bits`` rounded to the nearest integer, halves up (exact for integers below 2**53)."""
    return torch.floor(x * 2.0**-bits + 0.5)


def clamp(x: Tensor) -> Tensor:
    limit = 2.0**ACTIVATION_BITS
    return x.clamp(-limit, limit)


def to_fixed(x: Tensor) -> Tensor:
    """Real values to integer activations (float64), rounded and clamped."""
    return clamp(torch.floor(x.double() * 2.0**FRACTION_BITS + 0.5))


def from_fixed(x: Tensor) -> Tensor:
    """Integer activations back to real values (float64, exact)."""
    return x * 2.0**-FRACTION_BITS


def fixed_layer(layer: nn.Module, slope: float | None, in_scale: Tensor | None = None) -> FixedLayer:
    """The integer version of a Conv2d or ConvTranspose2d.

    ``in_scale`` (one factor per input channel) is folded into the weights, so
    a per-channel multiplication before the layer costs no rounding of its own.
    """
    if not isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
        raise TypeError(f"no integer version of {type(layer).__name__}")
    transposed = isinstance(layer, nn.ConvTranspose2d)
    weight = layer.weight.detach().to("cpu", torch.float64)
    if in_scale is not None:
        shape = (-1, 1, 1, 1) if transposed else (1, -1, 1, 1)
        weight = weight * in_scale.to("cpu", torch.float64).view(shape)
    largest = float(weight.abs().max())
    shift = WEIGHT_BITS - math.frexp(largest)[1] if largest > 0 else 0
    weight = torch.round(weight * 2.0**shift)
    bias = None
    if layer.bias is not None:
        bias = torch.round(layer.bias.detach().to("cpu", torch.float64) * 2.0**FRACTION_BITS)
    fan_in = weight.abs().sum(dim=(1, 2, 3) if not transposed else (0, 2, 3)).max()
    if float(fan_in) * 2.0**ACTIVATION_BITS >= EXACT_LIMIT:
        raise ExactnessError(f"{type(layer).__name__} with weights up to {largest:g}: integer sums could "
                             "exceed 2**53")
    stride, padding = _single(layer.stride), _single(layer.padding)
    output_padding = _single(layer.output_padding) if transposed else 0
    slope_units = None if slope is None else round(slope * 2**SLOPE_BITS)
    return FixedLayer(weight, bias, shift, transposed, stride, padding, output_padding, slope_units)


def fixed_sequence(seq: nn.Sequential, in_scale: Tensor | None = None) -> list[FixedLayer]:
    """The integer layers of a stack of convolutions, each optionally followed by a LeakyReLU."""
    layers: list[FixedLayer] = []
    modules = list(seq)
    for i, module in enumerate(modules):
        if isinstance(module, nn.LeakyReLU):
            continue
        following = modules[i + 1] if i + 1 < len(modules) else None
        slope = following.negative_slope if isinstance(following, nn.LeakyReLU) else None
        layers.append(fixed_layer(module, slope, in_scale if not layers else None))
    return layers


def run(layers: list[FixedLayer], x: Tensor) -> Tensor:
    for layer in layers:
        x = layer(x)
    return x


_INV_LN2 = 1.44269504088896338700e00
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10


def exact_exp(x: float) -> float:
    """``exp(x)`` from IEEE-754 basic operations only, so every machine gets the same bits.

    ``math.exp`` comes from the platform's maths library, whose last bit may
    differ between systems; this Taylor series after range reduction is
    within a few ulps of it and identical everywhere.
    """
    k = round(x * _INV_LN2)
    r = (x - k * _LN2_HI) - k * _LN2_LO  # |r| <= ln(2)/2; k * _LN2_HI is exact (fdlibm's split)
    term, total = 1.0, 1.0
    for n in range(1, 30):
        term = term * r / n
        total = total + term
    return math.ldexp(total, k)


def _single(value: int | tuple[int, ...] | str) -> int:
    """A square layer's stride/padding as one int."""
    if isinstance(value, str):
        raise ValueError(f"padding mode {value!r} has no integer version")
    if isinstance(value, int):
        return value
    if len(set(value)) != 1:
        raise ValueError(f"non-square {value} has no integer version")
    return int(value[0])
