"""The Invertible Rescaling Network: HR image <-> (LR image, latent z).

The network is a FrEIA ``SequenceINN``: for each factor of two in the scale, a
Haar downsampling (whose first three output channels are the per-channel
average, i.e. an LR image) followed by ``blocks_per_stage`` IRN coupling
blocks. The first three output channels are the LR image; the rest are ``z``,
trained towards N(0, t^2 I) (t = ``z_temperature``, 1 in IRN) so that the
decoder can draw it from that prior.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import torch
from torch import Tensor, nn
from FrEIA.framework import SequenceINN
from FrEIA.modules import HaarDownsampling

from .blocks import IRNCouplingBlock, dense_subnet

LR_CHANNELS = 3


@dataclass(frozen=True)
class IRNConfig:
    """Architecture hyper-parameters; everything needed to rebuild the model."""

    scale: int = 2
    blocks_per_stage: int = 8
    growth: int = 32
    clamp: float = 1.0
    #: Standard deviation of the z prior the inverse is trained and decoded with.
    #: IRN uses 1; a smaller prior is far easier to learn in a short CPU training.
    z_temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.scale not in (2, 4):
            raise ValueError(f"scale must be 2 or 4, got {self.scale}")
        if self.blocks_per_stage < 1 or self.growth < 1:
            raise ValueError("blocks_per_stage and growth must be positive")
        if self.clamp <= 0:
            raise ValueError("clamp must be positive")
        if self.z_temperature < 0:
            raise ValueError("z_temperature must be >= 0")

    @property
    def stages(self) -> int:
        return int(math.log2(self.scale))

    @property
    def z_channels(self) -> int:
        return LR_CHANNELS * self.scale**2 - LR_CHANNELS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "IRNConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown IRN config keys: {sorted(unknown)}")
        return cls(**values)


class IRN(nn.Module):
    """Invertible rescaling network built from FrEIA modules.

    ``forward`` downscales: ``x -> (lr, z)``; ``inverse`` upscales:
    ``(lr, z) -> x``. Inputs are in [0, 1]; height and width must be
    multiples of ``scale`` (see :func:`irncodec.imageio.pad_to_multiple`).
    """

    def __init__(self, config: IRNConfig | None = None) -> None:
        super().__init__()
        self.config = config or IRNConfig()
        # SequenceINN needs nominal dims to wire the modules; any size that is
        # a multiple of the scale works at run time.
        side = 4 * self.config.scale
        self.inn = SequenceINN(LR_CHANNELS, side, side)
        for _ in range(self.config.stages):
            self.inn.append(HaarDownsampling, order_by_wavelet=True, rebalance=0.5)
            for _ in range(self.config.blocks_per_stage):
                self.inn.append(
                    IRNCouplingBlock,
                    subnet_constructor=dense_subnet(self.config.growth),
                    split_len=LR_CHANNELS,
                    clamp=self.config.clamp,
                )

    @property
    def scale(self) -> int:
        return self.config.scale

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Downscale ``x`` [N,3,H,W] into ``(lr [N,3,H/s,W/s], z)``."""
        self._check_size(x)
        out, _ = self.inn(x, jac=False)
        return out[:, :LR_CHANNELS], out[:, LR_CHANNELS:]

    def inverse(self, lr: Tensor, z: Tensor) -> Tensor:
        """Upscale: invert ``forward`` exactly for the true ``z``."""
        out, _ = self.inn(torch.cat((lr, z), 1), rev=True, jac=False)
        return out

    def sample_z(
        self, lr: Tensor, temperature: float | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Draw z ~ N(0, temperature^2 I) shaped for ``lr`` (default: the model's prior)."""
        if temperature is None:
            temperature = self.config.z_temperature
        n, _, h, w = lr.shape
        shape = (n, self.config.z_channels, h, w)
        if temperature == 0:
            return lr.new_zeros(shape)
        z = torch.randn(shape, generator=generator, device=lr.device, dtype=lr.dtype)
        return z * temperature

    def upscale(
        self, lr: Tensor, temperature: float | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Reconstruct an HR image from an LR image alone, drawing z from its prior."""
        return self.inverse(lr, self.sample_z(lr, temperature, generator))

    def _check_size(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != LR_CHANNELS:
            raise ValueError(f"expected a [N,3,H,W] tensor, got shape {tuple(x.shape)}")
        if x.shape[2] % self.scale or x.shape[3] % self.scale:
            raise ValueError(
                f"height and width must be multiples of {self.scale}, got {tuple(x.shape[2:])}"
            )


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (the fixed Haar weights excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
