"""A learned entropy coder for the LR image: block transform + mean-scale hyperprior (CompressAI).

The latent is a learned 4x4 block transform of the LR image, started as the
orthonormal luma/chroma x 2-D DCT (48 coefficients per block, critically sampled),
each coefficient divided by a learned quantisation step. The entropy model is
Minnen et al. 2018's mean-scale hyperprior: a hyper-analysis, coded with a
factorized ``EntropyBottleneck``, predicts each coefficient's Gaussian mean
and scale for ``GaussianConditional``. The synthesis is the transposed
transform followed by a residual convolutional post-filter (zero at start)
that learns to remove block artifacts.

Why not Balle's GDN transforms: those start from random weights and need
hundreds of thousands of iterations; on this project's 2-core CPU budget a
coder that starts as a working transform codec (34.0 dB on the LR image at
3.5 bpp after 300 coder-only iterations, against 19.7 dB at 3.0 bpp for a
GDN hyperprior of similar size with the same loss and data;
``benchmarks/coder_init.py``) is the one that can be trained end to end with
the network.

Training sees additive-noise likelihoods for the rate and straight-through
rounding for the reconstruction; coding uses CompressAI's rANS coder, so the
bitstream is real.

Coding runs in tiles of ``Y_TILE`` latents a side, each with its own hyper
latent and rANS streams, so the entropy coder's memory (it works on Python
lists) stays bounded on large images; the synthesis transform then runs on the
whole reassembled latent, so tiles leave no seams in the LR image.

Rate between the trained levels: ``compress(lr, step=s)`` codes the latent in
steps ``s`` times the learned ones (the hyperprior's means and scales divided
by ``s`` too, so the Gaussians still fit the coarser latent), trading quality
for bits continuously without another model; the stream then starts with a
step block (docs/format.md), and a stream without one has step 1.

Determinism: the CDF tables are stored with the weights, but the index of each
latent's Gaussian comes from the hyper-synthesis's output. In floating point
(the models trained and shipped first) a stream decodes to exactly the
encoder's LR image only with the same float arithmetic (same machine and
torch build), as with every CompressAI hyperprior model. A coder made
:meth:`~LRHyperprior.make_exact` runs everything the decoder computes (the
hyper-synthesis, the means, the synthesis and its post-filter) in integers
(:mod:`irncodec.models.fixed_point`), so its streams decode to the same LR
image on every machine; its weights file says so (an ``exact_arithmetic``
buffer), which also gives it its own weights fingerprint.
"""

from __future__ import annotations

import math
import struct
import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..lr_codecs.step_block import STEP_BLOCK, StreamError, step_milli, stream_step
from . import fixed_point as fx

with warnings.catch_warnings():  # compressai's import uses the deprecated torch.jit.script
    warnings.simplefilter("ignore", FutureWarning)
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional
    from compressai.models import CompressionModel
    from compressai.models.utils import conv, deconv, update_registered_buffers
    from compressai.ops import quantize_ste

#: LR height and width are padded to a multiple of this (4x4 blocks, 4x hyper-analysis).
MULTIPLE = 16
BLOCK = 4
#: Transform coefficients per block: 3 colour channels x 4 x 4.
LATENTS = 3 * BLOCK * BLOCK
#: Quantisation steps are exp(STEP_GAIN * p): Adam then moves the (log-scale)
#: steps about this many times faster than the transform weights.
STEP_GAIN = 10.0
#: Initial quantisation step (8-bit levels, orthonormal units): about what JPEG uses at
#: medium quality, near where the shipped rate levels end up.
INITIAL_STEP = 16 / 255
#: Outside training the post-filter runs in strips of this many LR rows (plus a
#: halo of its receptive radius), so its 32-channel activations stay small on large images.
STRIP = 256
HALO = 3
#: Latents per tile side: 128 latents = 512 LR pixels.
Y_TILE = 128
#: CompressAI's table of Gaussian scales the CDFs are built for.
SCALE_TABLE = torch.exp(torch.linspace(torch.log(torch.tensor(0.11)), torch.log(torch.tensor(256.0)), 64))

_LENGTHS = struct.Struct("<II")  # per tile: hyper-latent stream, latent stream


class Coded(NamedTuple):
    """A compressed LR image: the payload and the LR image the decoder will get from it."""

    payload: bytes
    lr_hat: Tensor


def dct_transform() -> Tensor:
    """The orthonormal 4x4 colour-DCT basis as conv weights [48, 3, 4, 4]."""
    k = torch.arange(BLOCK, dtype=torch.float64)
    dct = torch.cos(torch.pi * (2 * k[None] + 1) * k[:, None] / (2 * BLOCK)) * (2 / BLOCK) ** 0.5
    dct[0] /= 2**0.5
    basis = torch.einsum("ui,vj->uvij", dct, dct).reshape(BLOCK * BLOCK, BLOCK, BLOCK)
    # Orthonormal luma / two chroma differences (the KLT of RGB photos is close to it).
    colour = torch.tensor([[1, 1, 1], [1, 0, -1], [1, -2, 1]], dtype=torch.float64)
    colour = colour / colour.norm(dim=1, keepdim=True)
    return torch.einsum("ck,bij->cbkij", colour, basis).reshape(LATENTS, 3, BLOCK, BLOCK).float()


class LRHyperprior(CompressionModel):
    """LR image [N,3,h,w] in [0,1] -> latents -> entropy-coded bytes, and back."""

    #: The LR codec (:mod:`irncodec.lr_codecs`) that stores this coder's payloads.
    codec_name = "entropy"

    def __init__(self, channels: int = 64, filter_channels: int = 32) -> None:
        super().__init__()
        n, m = channels, LATENTS
        self.entropy_bottleneck = EntropyBottleneck(n)
        self.gaussian_conditional = GaussianConditional(None)
        basis = dct_transform()
        self.analysis = nn.Conv2d(3, m, BLOCK, stride=BLOCK, bias=False)
        self.analysis.weight.data.copy_(basis)
        self.synthesis = nn.ConvTranspose2d(m, 3, BLOCK, stride=BLOCK, bias=False)
        self.synthesis.weight.data.copy_(basis)  # orthonormal: the transpose is the inverse
        self.log_step = nn.Parameter(torch.full((1, m, 1, 1), math.log(INITIAL_STEP) / STEP_GAIN))
        self.post_filter = nn.Sequential(
            nn.Conv2d(3, filter_channels, 3, padding=1), nn.LeakyReLU(inplace=True),
            nn.Conv2d(filter_channels, filter_channels, 3, padding=1), nn.LeakyReLU(inplace=True),
            nn.Conv2d(filter_channels, 3, 3, padding=1),
        )
        last = self.post_filter[-1]
        assert isinstance(last, nn.Conv2d)
        nn.init.zeros_(last.weight)
        if last.bias is not None:
            nn.init.zeros_(last.bias)
        self.h_a = nn.Sequential(
            conv(m, n, stride=1, kernel_size=3), nn.LeakyReLU(inplace=True),
            conv(n, n), nn.LeakyReLU(inplace=True), conv(n, n),
        )
        self.h_s = nn.Sequential(
            deconv(n, n), nn.LeakyReLU(inplace=True),
            deconv(n, n * 3 // 2), nn.LeakyReLU(inplace=True),
            conv(n * 3 // 2, 2 * m, stride=1, kernel_size=3),
        )

    def g_a(self, x: Tensor) -> Tensor:
        """Analysis: block transform coefficients in units of their quantisation steps."""
        return self.analysis(x) * torch.exp(-STEP_GAIN * self.log_step)

    # --- integer arithmetic ------------------------------------------------------------

    @property
    def exact(self) -> bool:
        """Whether the decoder side runs in integers (identical results on every machine)."""
        return "exact_arithmetic" in self._buffers

    def make_exact(self) -> None:
        """From now on, run the decoder side in integers; saved with the weights."""
        if not self.exact:
            self.register_buffer("exact_arithmetic", torch.ones(1, dtype=torch.int32))

    def _fixed(self) -> tuple[list[fx.FixedLayer], list[fx.FixedLayer], list[fx.FixedLayer]]:
        """The integer hyper-synthesis, synthesis (steps folded in) and post-filter, from the weights.

        Kept until a weight changes (its tensor or its in-place version counter).
        """
        params = [self.log_step, *self.h_s.parameters(), *self.synthesis.parameters(),
                  *self.post_filter.parameters()]
        try:
            key: tuple | None = tuple((p.data_ptr(), p._version) for p in params)
        except RuntimeError:  # inference tensors have no version counter: rebuild every time
            key = None
        cached = self.__dict__.get("_fixed_cache")
        if key is not None and cached is not None and cached[0] == key:
            return cached[1]
        steps = torch.tensor([fx.exact_exp(STEP_GAIN * float(v)) for v in
                              self.log_step.detach().to("cpu", torch.float64).flatten()], dtype=torch.float64)
        layers = (fx.fixed_sequence(self.h_s), [fx.fixed_layer(self.synthesis, None, steps)],
                  fx.fixed_sequence(self.post_filter))
        self.__dict__["_fixed_cache"] = (key, layers)
        return layers

    def _exact_gaussian_params(self, z_hat: Tensor, step: float) -> tuple[Tensor, Tensor]:
        h_s, _, _ = self._fixed()
        out = fx.from_fixed(fx.run(h_s, fx.to_fixed(z_hat.to("cpu"))))
        means, scales = out.chunk(2, 1)
        if step != 1:
            means, scales = means / step, scales / step
        table = self.gaussian_conditional.scale_table.to("cpu", torch.float64)
        scales = scales.clamp(min=float(self.gaussian_conditional.lower_bound_scale.bound))
        # compressai's rule: the index of the first table scale not below the scale, the last if none
        indexes = (len(table) - 1) - (scales.unsqueeze(-1) <= table[:-1]).sum(-1)
        return indexes.int().to(z_hat.device), means.to(z_hat.device)

    def _exact_synthesis(self, y_hat: Tensor, size: tuple[int, int]) -> Tensor:
        _, synthesis, post_filter = self._fixed()
        x = fx.run(synthesis, fx.to_fixed(y_hat.to("cpu")))
        out = x + in_strips(lambda strip: fx.run(post_filter, strip), x)
        out = out[:, :, :size[0], :size[1]].clamp(0, 2.0**fx.FRACTION_BITS)
        return fx.from_fixed(out).to(y_hat.device, torch.float32)

    def g_s(self, y_hat: Tensor) -> Tensor:
        """Synthesis: inverse block transform, then the learned post-filter."""
        x = self.synthesis(y_hat * torch.exp(STEP_GAIN * self.log_step))
        if self.training:
            return x + self.post_filter(x)
        return x + in_strips(self.post_filter, x)

    # --- training ------------------------------------------------------------------

    def forward(self, lr: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Reconstructed LR image and the likelihoods of its latents (for the rate)."""
        padded, (h, w) = pad_to_blocks(lr)
        y = self.g_a(padded)
        z_hat, z_likelihoods = self.entropy_bottleneck(self.h_a(y))
        means, scales = self.h_s(z_hat).chunk(2, 1)
        _, y_likelihoods = self.gaussian_conditional(y, scales, means=means)
        y_hat = quantize_ste(y - means) + means
        lr_hat = self.g_s(y_hat)[:, :, :h, :w]
        return lr_hat, {"y": y_likelihoods, "z": z_likelihoods}

    # --- coding --------------------------------------------------------------------

    def compress(self, lr: Tensor, step: float = 1.0) -> Coded:
        """Entropy-code one LR image [1,3,h,w]; also returns the decoder's LR image.

        ``step`` multiplies every quantisation step (> 1: fewer bits, lower
        quality); it is rounded to thousandths, and 1 writes no step block.
        """
        if lr.shape[0] != 1:
            raise ValueError("compress codes one image at a time")
        milli = step_milli(step)
        s = milli / 1000
        padded, (h, w) = pad_to_blocks(lr)
        y = self.g_a(padded)
        y_hat = torch.empty_like(y, dtype=torch.float64 if self.exact else y.dtype)
        chunks = [] if milli == 1000 else [STEP_BLOCK.pack(0, milli)]
        for rows, cols in latent_tiles(y.shape[-2:]):
            y_tile = y[:, :, rows, cols]
            z = self.h_a(y_tile)
            z_string = self.entropy_bottleneck.compress(z)[0]
            indexes, means = self._gaussian_params(self.entropy_bottleneck.decompress([z_string], z.shape[-2:]), s)
            y_scaled = y_tile.to(means.dtype) / s
            y_string = self.gaussian_conditional.compress(y_scaled, indexes, means=means)[0]
            y_hat[:, :, rows, cols] = self.gaussian_conditional.quantize(y_scaled, "dequantize", means) * s
            chunks += [_LENGTHS.pack(len(z_string), len(y_string)), z_string, y_string]
        return Coded(b"".join(chunks), self.synthesize(y_hat, (h, w)))

    def decompress(self, payload: bytes, size: tuple[int, int]) -> Tensor:
        """The LR image [1,3,h,w] of ``size`` (height, width) coded in ``payload``.

        Raises StreamError when the payload's framing does not fit the size.
        """
        h, w = size
        y_shape = (-(-h // MULTIPLE) * MULTIPLE // BLOCK, -(-w // MULTIPLE) * MULTIPLE // BLOCK)
        m = LATENTS
        y_hat = torch.empty((1, m, *y_shape), device=self.log_step.device,
                            dtype=torch.float64 if self.exact else torch.float32)
        view = memoryview(payload)
        s, offset = stream_step(view), 0
        if s != 1:
            offset = STEP_BLOCK.size
        for rows, cols in latent_tiles(y_shape):
            if offset + _LENGTHS.size > len(view):
                raise StreamError("the stream ends before its last tile")
            z_len, y_len = _LENGTHS.unpack_from(view, offset)
            offset += _LENGTHS.size
            if z_len == 0 or y_len == 0 or offset + z_len + y_len > len(view):
                raise StreamError("a tile's length runs past the end of the stream")
            z_string, y_string = bytes(view[offset:offset + z_len]), bytes(view[offset + z_len:offset + z_len + y_len])
            offset += z_len + y_len
            tile_shape = (rows.stop - rows.start, cols.stop - cols.start)
            z_shape = (tile_shape[0] // 4, tile_shape[1] // 4)
            z_hat = self.entropy_bottleneck.decompress([_padded(z_string, z_shape[0] * z_shape[1] * m)], z_shape)
            indexes, means = self._gaussian_params(z_hat, s)
            symbols = self.gaussian_conditional.decompress([_padded(y_string, indexes.numel())], indexes,
                                                           dtype=means.dtype)
            y_hat[:, :, rows, cols] = (symbols + means) * s
        if offset != len(view):
            raise StreamError(f"{len(view) - offset} bytes follow the last tile")
        return self.synthesize(torch.nan_to_num(y_hat), (h, w))

    def synthesize(self, y_hat: Tensor, size: tuple[int, int]) -> Tensor:
        """The LR image from dequantised latents, cropped to ``size`` and clamped to [0, 1]."""
        if self.exact:
            return self._exact_synthesis(y_hat, size)
        return self.g_s(y_hat)[:, :, :size[0], :size[1]].clamp(0, 1)

    def _gaussian_params(self, z_hat: Tensor, step: float = 1.0) -> tuple[Tensor, Tensor]:
        """CDF indexes and means of the latent in units of ``step`` times the learned steps."""
        if self.exact:
            return self._exact_gaussian_params(z_hat, step)
        means, scales = self.h_s(z_hat).chunk(2, 1)
        if step != 1:
            means, scales = means / step, scales / step
        return self.gaussian_conditional.build_indexes(scales), means

    # --- weights -------------------------------------------------------------------

    def update(self, scale_table: Tensor | None = None, force: bool = False,
               update_quantiles: bool = False) -> bool:
        """Build the CDF tables the coder needs (after training, before export);
        ``update_quantiles`` first solves the hyper-latent's quantiles exactly."""
        return super().update(SCALE_TABLE if scale_table is None else scale_table, force, update_quantiles)

    def fit_buffers(self, state_dict: dict[str, Tensor], prefix: str = "") -> None:
        """Resize the CDF buffers to those in ``state_dict`` so it loads (they vary in size),
        and make the coder exact if the weights are those of an exact one."""
        if prefix + "exact_arithmetic" in state_dict:
            self.make_exact()
        update_registered_buffers(self.entropy_bottleneck, prefix + "entropy_bottleneck",
                                  ["_quantized_cdf", "_offset", "_cdf_length"], state_dict)
        update_registered_buffers(self.gaussian_conditional, prefix + "gaussian_conditional",
                                  ["_quantized_cdf", "_offset", "_cdf_length", "scale_table"], state_dict)

    @property
    def is_ready(self) -> bool:
        """Whether the CDF tables exist (``update`` ran, or they were loaded)."""
        return self.entropy_bottleneck._quantized_cdf.numel() > 0 and \
            self.gaussian_conditional._quantized_cdf.numel() > 0


def in_strips(layer: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``layer(x)`` for a size-preserving layer of receptive radius ``HALO``, computed in strips
    of ``STRIP`` rows (so its wide activations stay small on large images): the same values."""
    height = x.shape[-2]
    if height <= STRIP:
        return layer(x)
    out = torch.empty_like(x)
    for top in range(0, height, STRIP):
        bottom, lo, hi = min(top + STRIP, height), max(top - HALO, 0), min(top + STRIP + HALO, height)
        out[:, :, top:bottom] = layer(x[:, :, lo:hi])[:, :, top - lo:bottom - lo]
    return out


def pad_to_blocks(x: Tensor) -> tuple[Tensor, tuple[int, int]]:
    """``x`` edge-padded to multiples of ``MULTIPLE``, and its original (height, width)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % MULTIPLE, -w % MULTIPLE
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return x, (h, w)


def latent_tiles(shape: tuple[int, int] | torch.Size) -> list[tuple[slice, slice]]:
    """Row-major tiles of at most ``Y_TILE`` latents a side covering a latent of ``shape``."""
    h, w = shape
    return [(slice(top, min(top + Y_TILE, h)), slice(left, min(left + Y_TILE, w)))
            for top in range(0, h, Y_TILE) for left in range(0, w, Y_TILE)]


def _padded(stream: bytes, symbols: int) -> bytes:
    """``stream`` followed by zero words, enough that the rANS decoder never reads past the buffer.

    CompressAI's decoder trusts its input: on a crafted stream it reads on
    past the end. Per symbol it reads at most two 32-bit words, plus one per
    4-bit bypass chunk; zero words end every bypass run, so the chunks are at
    most 15 per nibble of the stream (and of the 64-bit coder state).
    """
    return stream + bytes(4 * (2 * symbols + 32 * len(stream) + 256))
