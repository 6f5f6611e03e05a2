"""Invertible building blocks of IRN as FrEIA modules.

IRN (Xiao et al., ECCV 2020) alternates a Haar wavelet split with coupling
blocks that keep the first three channels (the low-pass, i.e. the LR image)
apart from the high-frequency channels that become the latent ``z``:

    y1 = x1 + phi(x2)                       (additive, LR channels)
    y2 = x2 * exp(s(y1)) + eta(y1)          (affine, bounded scale)

The scale is bounded by ``clamp * (2 * sigmoid(.) - 1)`` so training cannot
blow up, and the last convolution of every subnet starts at zero, so each
block starts as the identity and the whole network starts as a Haar transform.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from .freia import InvertibleModule

SubnetConstructor = Callable[[int, int], nn.Module]

#: Convolutions of a dense subnet before its output convolution.
DENSE_LAYERS = 4


class DenseBlock(nn.Module):
    """Five 3x3 convolutions with dense connections (ESRGAN/IRN subnet)."""

    def __init__(self, in_channels: int, out_channels: int, growth: int = 32) -> None:
        super().__init__()
        self.growth = growth
        convs = [nn.Conv2d(in_channels + i * growth, growth, 3, padding=1) for i in range(DENSE_LAYERS)]
        self.convs = nn.ModuleList(convs)
        self.out = nn.Conv2d(in_channels + DENSE_LAYERS * growth, out_channels, 3, padding=1)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        for conv in convs:
            nn.init.xavier_normal_(conv.weight)
            conv.weight.data.mul_(0.1)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
        nn.init.zeros_(self.out.weight)
        if self.out.bias is not None:
            nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        if not torch.is_grad_enabled():
            return self._forward_in_place(x)
        features = [x]
        for conv in self.convs:
            features.append(self.act(conv(torch.cat(features, 1))))
        return self.out(torch.cat(features, 1))

    def _forward_in_place(self, x: Tensor) -> Tensor:
        """The same function without autograd, each feature written once into one buffer.

        Concatenating the growing feature list took about a quarter of inference
        time; here each convolution reads a channel prefix of the buffer. The
        buffer is channels-last, the layout oneDNN's CPU convolutions work in, so
        they skip a reorder of every input. Together, encode + decode 1.5x faster on
        a 2-core CPU (``benchmarks/speed.py``), the same values up to float rounding.
        """
        channels, growth = x.shape[1], self.growth
        features = torch.empty((x.shape[0], channels + len(self.convs) * growth, *x.shape[2:]),
                               dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
        features[:, :channels] = x
        for conv in self.convs:
            features[:, channels: channels + growth] = self.act(conv(features[:, :channels]))
            channels += growth
        return self.out(features)


def dense_subnet(growth: int) -> SubnetConstructor:
    """Subnet constructor for :class:`IRNCouplingBlock` with a given growth."""

    def build(in_channels: int, out_channels: int) -> nn.Module:
        return DenseBlock(in_channels, out_channels, growth)

    return build


_DEFAULT_SUBNET = dense_subnet(32)


class IRNCouplingBlock(InvertibleModule):
    """IRN's invertible block: additive on the LR channels, affine on the rest."""

    def __init__(
        self,
        dims_in: Sequence[tuple[int, ...]],
        dims_c: Sequence[tuple[int, ...]] | None = None,
        subnet_constructor: SubnetConstructor = _DEFAULT_SUBNET,
        split_len: int = 3,
        clamp: float = 1.0,
    ) -> None:
        super().__init__(dims_in, dims_c or [])
        channels = dims_in[0][0]
        if not 0 < split_len < channels:
            raise ValueError(f"split_len must be in (0, {channels}), got {split_len}")
        self.split_len = split_len
        self.clamp = clamp
        rest = channels - split_len
        self.subnet_constructor = subnet_constructor
        self.phi = subnet_constructor(rest, split_len)
        self.eta = subnet_constructor(split_len, rest)
        self.rho = subnet_constructor(split_len, rest)

    def _log_scale(self, y1: Tensor) -> Tensor:
        return self.clamp * (torch.sigmoid(self.rho(y1)) * 2 - 1)

    def _scale_shift(self, b: Tensor, y1: Tensor) -> tuple[Tensor, Tensor]:
        """The affine half, forward: ``b * exp(s(y1)) + eta(y1)`` and its log-Jacobian."""
        s = self._log_scale(y1)
        return b * torch.exp(s) + self.eta(y1), s.sum(dim=(1, 2, 3))

    def _unscale_shift(self, y2: Tensor, y1: Tensor) -> tuple[Tensor, Tensor]:
        """The affine half, inverse: ``(y2 - eta(y1)) * exp(-s(y1))`` and its log-Jacobian."""
        s = self._log_scale(y1)
        return (y2 - self.eta(y1)) * torch.exp(-s), -s.sum(dim=(1, 2, 3))

    def forward(
        self, x: Sequence[Tensor], c: Sequence[Tensor] = (), rev: bool = False, jac: bool = True
    ) -> tuple[tuple[Tensor], Tensor]:
        t = x[0]
        a, b = t[:, : self.split_len], t[:, self.split_len :]
        if not rev:
            y1 = a + self.phi(b)
            y2, log_jac = self._scale_shift(b, y1)
        else:
            y2, log_jac = self._unscale_shift(b, a)
            y1 = a - self.phi(y2)
        return (torch.cat((y1, y2), 1),), log_jac

    def output_dims(self, input_dims: Sequence[tuple[int, ...]]) -> list[tuple[int, ...]]:
        return list(input_dims)


class EnhancedCouplingBlock(IRNCouplingBlock):
    """SAIN's E-InvBlock: an IRN block with a tap that is the stored LR image.

    Forward, the LR image is ``lr = x1 + phi(x2)``, recorded in ``self.lr``,
    and the block passes ``y1 = lr - psi(x2)`` on to the blocks after it (the
    compression simulator), which learn to turn it into what the LR image looks
    like after the lossy codec. Inverse, the decoder feeds in the *decoded*
    (compressed) LR: the simulator's inverse maps it back, then this block
    recomputes ``lr = y1 + psi(x2)`` and ``x1 = lr - phi(x2)``: the asymmetric
    path that lets the inverse undo compression.

    ``psi`` starts at zero (like every subnet's last conv), so a trained IRN
    block loads into it unchanged and behaves identically.
    """

    def __init__(self, dims_in: Sequence[tuple[int, ...]], dims_c: Sequence[tuple[int, ...]] | None = None,
                 **options) -> None:
        super().__init__(dims_in, dims_c, **options)
        self.psi = self.subnet_constructor(dims_in[0][0] - self.split_len, self.split_len)
        self.lr: Tensor | None = None

    def forward(
        self, x: Sequence[Tensor], c: Sequence[Tensor] = (), rev: bool = False, jac: bool = True
    ) -> tuple[tuple[Tensor], Tensor]:
        t = x[0]
        a, b = t[:, : self.split_len], t[:, self.split_len :]
        if not rev:
            self.lr = a + self.phi(b)
            y1 = self.lr - self.psi(b)
            y2, log_jac = self._scale_shift(b, y1)
        else:
            y2, log_jac = self._unscale_shift(b, a)
            self.lr = a + self.psi(y2)
            y1 = self.lr - self.phi(y2)
        return (torch.cat((y1, y2), 1),), log_jac
