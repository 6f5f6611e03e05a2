"""The Invertible Rescaling Network: HR image <-> (LR image, latent z).

The network is a FrEIA ``SequenceINN``: for each factor of two in the scale, a
Haar downsampling (whose first three output channels are the per-channel
average, i.e. an LR image) followed by ``blocks_per_stage`` IRN coupling
blocks. The first three output channels are the LR image; the rest are ``z``,
trained towards a prior (N(0, t^2 I), t = ``z_temperature``, or a learnable
Gaussian mixture) so that the decoder can draw it from that prior.

``architecture="sain"`` makes it SAIN's compression-aware network (Yang et
al., AAAI 2023): the last coupling block is an E-InvBlock whose tap is the
stored LR image, followed by ``simulator_blocks`` plain blocks whose output
imitates the LR image after lossy compression; decoding inverts from the
decoded LR through the simulator (see :class:`EnhancedCouplingBlock`).

``lr_coder="hyperprior"`` adds a learned entropy coder for the LR image
(:class:`~irncodec.models.lr_coder.LRHyperprior`), trained jointly with the
network for rate and distortion; the ``entropy`` LR codec stores its bitstream.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import Tensor, nn

from .blocks import EnhancedCouplingBlock, IRNCouplingBlock, dense_subnet
from .freia import HaarDownsampling, SequenceINN

if TYPE_CHECKING:
    from .lr_coder import LRHyperprior
from .priors import GaussianPrior, MixturePrior

LR_CHANNELS = 3
ARCHITECTURES = ("irn", "sain")
Z_PRIORS = ("gaussian", "mixture")
LR_CODERS = ("none", "hyperprior")
#: Largest value of an integer config field (blocks, channels, components).
MAX_SIZE_FIELD = 4096


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
    #: "irn", or "sain": E-InvBlock + compression simulator (see the module docstring).
    architecture: str = "irn"
    #: Plain coupling blocks after the E-InvBlock that simulate compression (sain only).
    simulator_blocks: int = 0
    #: "gaussian": N(0, z_temperature^2); "mixture": learnable Gaussian mixture (SAIN).
    z_prior: str = "gaussian"
    mixture_components: int = 5
    #: "none", or "hyperprior": a learned entropy coder for the LR image (see lr_coder).
    lr_coder: str = "none"
    #: Channels of the LR entropy coder's hyperprior and of its post-filter.
    coder_channels: int = 64
    coder_filter_channels: int = 32
    #: Spread of the z that decoding draws unless told otherwise, relative to the
    #: prior (0: the prior's mean). Not architecture: how the model is meant to be
    #: decoded; a model trained with sampled z in its loss can need 1.
    decode_temperature: float = 0.0

    def __post_init__(self) -> None:
        self._check_types()
        if self.scale not in (2, 4):
            raise ValueError(f"scale must be 2 or 4, got {self.scale}")
        if self.blocks_per_stage < 1 or self.growth < 1:
            raise ValueError("blocks_per_stage and growth must be positive")
        if self.clamp <= 0:
            raise ValueError("clamp must be positive")
        if self.z_temperature <= 0:
            raise ValueError("z_temperature must be positive")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if self.simulator_blocks < 0 or (self.architecture == "irn" and self.simulator_blocks):
            raise ValueError("simulator_blocks must be >= 0, and 0 unless architecture is 'sain'")
        if self.z_prior not in Z_PRIORS:
            raise ValueError(f"z_prior must be one of {Z_PRIORS}, got {self.z_prior!r}")
        if self.mixture_components < 1:
            raise ValueError("mixture_components must be positive")
        if self.lr_coder not in LR_CODERS:
            raise ValueError(f"lr_coder must be one of {LR_CODERS}, got {self.lr_coder!r}")
        if self.coder_channels < 1 or self.coder_filter_channels < 1:
            raise ValueError("coder_channels and coder_filter_channels must be positive")
        if self.decode_temperature < 0:
            raise ValueError("decode_temperature must be >= 0")

    def _check_types(self) -> None:
        """Every field of the type it is declared with, and sizes a network can have
        (a damaged weights file must not make the loader allocate without bound)."""
        for f in fields(self):
            value, kind = getattr(self, f.name), str(f.type)
            if kind == "int":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{f.name} must be an integer, got {value!r}")
                if abs(value) > MAX_SIZE_FIELD:
                    raise ValueError(f"{f.name} = {value} is out of range (at most {MAX_SIZE_FIELD})")
            elif kind == "float":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ValueError(f"{f.name} must be a finite number, got {value!r}")
            elif kind == "str" and not isinstance(value, str):
                raise ValueError(f"{f.name} must be a string, got {value!r}")

    @property
    def stages(self) -> int:
        return int(math.log2(self.scale))

    @property
    def z_channels(self) -> int:
        return LR_CHANNELS * self.scale**2 - LR_CHANNELS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> IRNConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown IRN config keys: {sorted(unknown)}")
        return cls(**values)


class Rescaled(NamedTuple):
    """Everything the downscaling pass makes."""

    lr: Tensor  #: the LR image to store
    lr_simulated: Tensor  #: what the network expects the decoder to receive (= lr for IRN)
    z: Tensor  #: the latent the decoder must draw


class IRN(nn.Module):
    """Invertible rescaling network built from FrEIA modules.

    ``forward`` downscales: ``x -> (lr, z)``; ``inverse`` upscales:
    ``(lr, z) -> x``. Inputs are in [0, 1]; height and width must be
    multiples of ``scale`` (see :func:`irncodec.tensors.pad_to_multiple`).
    For IRN, ``inverse(*forward(x))`` is ``x``; for SAIN the exact inverse
    is of ``rescale(x).lr_simulated`` and z.
    """

    def __init__(self, config: IRNConfig | None = None) -> None:
        super().__init__()
        self.config = config or IRNConfig()
        # SequenceINN needs nominal dims to wire the modules; any size that is
        # a multiple of the scale works at run time.
        side = 4 * self.config.scale
        self.inn = SequenceINN(LR_CHANNELS, side, side)
        c = self.config
        block_options = dict(subnet_constructor=dense_subnet(c.growth), split_len=LR_CHANNELS, clamp=c.clamp)
        for stage in range(c.stages):
            self.inn.append(HaarDownsampling, order_by_wavelet=True, rebalance=0.5)
            for block in range(c.blocks_per_stage):
                last = stage == c.stages - 1 and block == c.blocks_per_stage - 1
                enhanced = last and c.architecture == "sain"
                self.inn.append(EnhancedCouplingBlock if enhanced else IRNCouplingBlock, **block_options)
        # Index (not a reference, which would register the block twice) of the E-InvBlock.
        self._lr_tap = len(self.inn.module_list) - 1 if c.architecture == "sain" else None
        for _ in range(c.simulator_blocks):
            self.inn.append(IRNCouplingBlock, **block_options)
        if c.z_prior == "mixture":
            self.prior: GaussianPrior | MixturePrior = MixturePrior(c.mixture_components, c.z_temperature)
        else:
            self.prior = GaussianPrior(c.z_temperature)
        self.lr_coder: LRHyperprior | None = None
        if c.lr_coder == "hyperprior":  # imported here: CompressAI takes seconds to import, the other paths skip it
            from .lr_coder import LRHyperprior

            self.lr_coder = LRHyperprior(c.coder_channels, c.coder_filter_channels)

    @property
    def own_codec(self) -> str | None:
        """The LR codec of the model's own learned coder; None when any image codec stores its LR."""
        return None if self.lr_coder is None else self.lr_coder.codec_name

    @property
    def scale(self) -> int:
        return self.config.scale

    def rescale(self, x: Tensor) -> Rescaled:
        """Downscale ``x`` [N,3,H,W]: the LR image [N,3,H/s,W/s], its simulated decoded form, and z."""
        self._check_size(x)
        out, _ = self.inn(x, jac=False)
        simulated, z = out[:, :LR_CHANNELS], out[:, LR_CHANNELS:]
        lr = simulated if self._lr_tap is None else self.inn.module_list[self._lr_tap].lr
        return Rescaled(lr, simulated, z)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Downscale ``x`` [N,3,H,W] into ``(lr [N,3,H/s,W/s], z)``."""
        lr, _, z = self.rescale(x)
        return lr, z

    def inverse(self, lr: Tensor, z: Tensor) -> Tensor:
        """Upscale a (decoded) LR image with a given z; exact for IRN's true z."""
        out, _ = self.inn(torch.cat((lr, z), 1), rev=True, jac=False)
        return out

    def sample_z(
        self, lr: Tensor, temperature: float | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Draw z shaped for ``lr`` from the prior, its spread scaled by ``temperature``
        (0: the prior's mean; None or 1: the prior itself)."""
        n, _, h, w = lr.shape
        shape = (n, self.config.z_channels, h, w)
        return self.prior.sample(shape, lr, 1.0 if temperature is None else temperature, generator)

    def upscale(
        self, lr: Tensor, temperature: float | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Reconstruct an HR image from an LR image alone, drawing z from its prior."""
        return self.inverse(lr, self.sample_z(lr, temperature, generator))

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """As nn.Module's, first resizing the entropy coder's CDF tables to the stored ones."""
        if self.lr_coder is not None and any(k.startswith("lr_coder.") for k in state_dict):
            self.lr_coder.fit_buffers(dict(state_dict), "lr_coder.")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

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
