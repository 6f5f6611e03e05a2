"""Priors for the latent z that the decoder draws instead of the discarded one.

Both priors are i.i.d. over every element of z and share one interface:
``nll`` (the training loss that pulls z towards the prior), ``mean`` and
``sample``. ``temperature`` t scales a draw's spread around the prior's mean:
t = 0 gives the mean (deterministic, and the best PSNR), t = 1 the prior itself.

* :class:`GaussianPrior`: IRN's N(0, sigma^2), no parameters. Its loss is
  IRN's sum of z^2 (the Gaussian NLL up to a constant factor and offset).
* :class:`MixturePrior`: SAIN's learnable 1-D Gaussian mixture, which can fit
  the heavier-tailed, not quite zero-mean z that compression-aware training
  produces.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class GaussianPrior(nn.Module):
    """z ~ N(0, std^2) per element."""

    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def nll(self, z: Tensor) -> Tensor:
        """IRN's distribution loss: sum of z^2 per image, averaged over the batch."""
        return (z**2).sum() / z.shape[0]

    def mean(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        return like.new_zeros(shape)

    def sample(self, shape: tuple[int, ...], like: Tensor, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> Tensor:
        if temperature == 0:
            return self.mean(shape, like)
        noise = torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)
        return noise * (self.std * temperature)

    def extra_repr(self) -> str:
        return f"std={self.std}"


class MixturePrior(nn.Module):
    """z ~ sum_k pi_k N(mu_k, sigma_k^2) per element, with learnable pi, mu, sigma."""

    def __init__(self, components: int, std: float) -> None:
        super().__init__()
        if components < 1:
            raise ValueError("a mixture needs at least one component")
        self.logits = nn.Parameter(torch.zeros(components))
        spread = torch.linspace(-1.0, 1.0, components) if components > 1 else torch.zeros(1)
        self.means = nn.Parameter(spread * std)
        self.log_scales = nn.Parameter(torch.full((components,), math.log(std)))

    @property
    def components(self) -> int:
        return self.logits.numel()

    def nll(self, z: Tensor) -> Tensor:
        """Negative log-likelihood of z in nats per image, averaged over the batch."""
        x = z.unsqueeze(-1)
        log_scales = self.log_scales.clamp(min=-9.0)
        log_prob = (-0.5 * ((x - self.means) / log_scales.exp()) ** 2 - log_scales
                    - 0.5 * math.log(2 * math.pi) + torch.log_softmax(self.logits, 0))
        return -torch.logsumexp(log_prob, -1).sum() / z.shape[0]

    def mean(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        mu = (torch.softmax(self.logits, 0) * self.means).sum()
        return mu.to(like).expand(shape).clone()

    def sample(self, shape: tuple[int, ...], like: Tensor, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> Tensor:
        mean = self.mean(shape, like)
        if temperature == 0:
            return mean
        # Inverse-CDF choice of component, so one generator (on any device) drives it all.
        cdf = torch.cumsum(torch.softmax(self.logits, 0), 0).to(like)
        pick = torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)
        index = torch.searchsorted(cdf, pick.reshape(-1)).clamp(max=self.components - 1)
        noise = torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)
        draw = self.means.to(like)[index].view(shape) + self.log_scales.exp().to(like)[index].view(shape) * noise
        return mean + temperature * (draw - mean)

    def extra_repr(self) -> str:
        return f"components={self.components}"

