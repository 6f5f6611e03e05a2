"""A differentiable stand-in for baseline JPEG (libjpeg / Pillow), in pure torch.

Why: the codec stores the IRN's LR image as a JPEG, so the inverse network
has to undo compression it never saw in plain IRN training. SAIN (Yang et
al., "Self-Asymmetric Invertible Network for Compression-Aware Image
Rescaling", AAAI 2023) trains with a differentiable JPEG in the loop; this
module is that JPEG, made to track what Pillow actually writes and decodes.

What is modelled, step by step (libjpeg's defaults as Pillow uses them):

* RGB -> YCbCr with the JFIF full-range BT.601 coefficients of libjpeg's
  ``jccolor.c`` and the level shift by 128 on the 0..255 scale;
* 4:2:0 chroma subsampling as a 2x2 box average (libjpeg's ``h2v2_downsample``),
  or none with ``subsampling="4:4:4"``;
* edge replication to whole MCUs, as libjpeg pads partial blocks;
* the 8x8 orthonormal DCT-II (JPEG's DCT is exactly this transform);
* quantisation with the Annex K tables scaled by quality exactly as
  ``jpeg_quality_scaling`` + ``jpeg_add_quant_table`` (force_baseline) do,
  with a selectable differentiable rounding;
* dequantisation, inverse DCT, the decoder's clamp of samples to 0..255,
  chroma upsampling and YCbCr -> RGB (``jdcolor.c`` coefficients).

What is not modelled, and what it costs (see the tests for measured PSNRs):

* entropy coding: there is no Huffman stage; :func:`jpeg_bits` estimates the
  file size instead, from the same quantised coefficients (a calibrated
  proxy, see its docstring);
* integer arithmetic: libjpeg's default DCT/IDCT is the fixed-point ``ISLOW``
  one, here a float DCT; this is the main residual. libjpeg also rounds
  samples to 8 bits after every stage. We round (straight-through, so the
  gradient is the identity whatever ``rounding`` says) where it measurably
  helps: the YCbCr samples the encoder codes and the IDCT output the decoder
  gets (about +3-4 dB proxy-vs-Pillow PSNR). Rounding after down/upsampling
  gained nothing measurable and the output RGB is left continuous
  (quantise it to 8 bits yourself if you need the decoder's exact grid);
* fancy upsampling: libjpeg(-turbo)'s default ``h2v2_fancy_upsample`` is the
  separable 3/4-1/4 triangle filter with edges replicated, which equals
  bilinear interpolation with half-pixel centres on the chroma plane cropped
  to its true size (ceil(H/2) x ceil(W/2)); we use exactly that, so the only
  mismatch left is libjpeg's integer rounding (biases 8 and 7 out of 16).
  IJG libjpeg 7+ upsamples in the DCT domain instead; Pillow ships
  libjpeg-turbo, which keeps the 6b behaviour modelled here;
* libjpeg rounds quotients half away from zero, ``torch.round`` half to
  even: they differ only on exact ties, which the float DCT almost never hits;
* input is not clamped: feed images in [0, 1] (clamping here would zero the
  gradient of out-of-range pixels, so that choice is left to the caller);
* precision: float16/bfloat16 run but lose precision on the 0..255 scale
  (errors of a few percent); use float32 or float64 to track libjpeg.

Rounding modes: "ste" (default) makes the forward pass a real quantiser;
"cubic" is smoother but its gradient 3 (x - round x)^2 vanishes at integers;
"noise" adds the quantiser's error as uniform noise to every coefficient,
including the many that JPEG zeroes, so at low quality it distorts far more
than JPEG does (about 12 dB PSNR at QF 10 and 19 dB at QF 50 on a Kodak
crop, against 26 and 32 dB for the real thing); it is exact in eval mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Rounder = Callable[[Tensor], Tensor]

__all__ = ["ROUNDINGS", "SUBSAMPLINGS", "DiffJPEG", "diff_jpeg", "jpeg_bits", "jpeg_rate_features", "quant_tables"]

ROUNDINGS = ("ste", "cubic", "noise")
SUBSAMPLINGS = ("4:2:0", "4:4:4")

#: libjpeg pads each component to whole MCUs; with 4:2:0 an MCU is 16x16 pixels.
_MCU = 16

#: Annex K.1 base tables (natural row-major order), as in libjpeg's jcparam.c.
_LUMA_BASE = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)
_CHROMA_BASE = (
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
)

#: RGB -> YCbCr rows (Y, Cb, Cr), the constants of libjpeg's jccolor.c.
_RGB_TO_YCC = (
    (0.29900, 0.58700, 0.11400),
    (-0.16874, -0.33126, 0.50000),
    (0.50000, -0.41869, -0.08131),
)
#: YCbCr -> RGB rows (R, G, B) over (Y, Cb, Cr), from libjpeg's jdcolor.c.
_YCC_TO_RGB = (
    (1.0, 0.0, 1.40200),
    (1.0, -0.34414, -0.71414),
    (1.0, 1.77200, 0.0),
)


# --- quality and tables ------------------------------------------------------

def _quality_tensor(quality: int | Tensor) -> Tensor:
    """Validate quality (int or [N] / scalar tensor of whole numbers in 1..100) as int64."""
    if isinstance(quality, Tensor):
        if quality.dtype == torch.bool or quality.dim() > 1 or quality.is_complex():
            raise ValueError(f"quality tensor must be a scalar or 1-D [N] real tensor, got {quality.dtype} "
                             f"of shape {tuple(quality.shape)}")
        q = quality.detach()
        if q.is_floating_point() and not torch.equal(q, q.round()):
            raise ValueError("quality must hold whole numbers")
        q = q.to(torch.int64)
    elif isinstance(quality, Integral) and not isinstance(quality, bool):
        q = torch.tensor(int(quality), dtype=torch.int64)
    else:
        raise ValueError(f"quality must be an int or an integer tensor, got {type(quality).__name__}")
    if q.numel() and (q.min() < 1 or q.max() > 100):
        raise ValueError(f"quality must be in 1..100, got {quality}")
    return q


def _scale_table(base: tuple[int, ...], quality: Tensor) -> Tensor:
    """libjpeg's jpeg_quality_scaling + jpeg_add_quant_table(force_baseline=TRUE), in integers."""
    scale = torch.where(quality < 50, 5000 // quality, 200 - 2 * quality)
    table = torch.tensor(base, dtype=torch.int64, device=quality.device).view(8, 8)
    entries = (table * scale[..., None, None] + 50) // 100
    return entries.clamp(1, 255)


def quant_tables(quality: int | Tensor) -> tuple[Tensor, Tensor]:
    """Luma and chroma quantisation tables (8x8 float, natural order) libjpeg uses at ``quality``.

    An int gives two [8, 8] tables; a [N] tensor gives [N, 8, 8] ones (one per sample).
    """
    q = _quality_tensor(quality)
    return _scale_table(_LUMA_BASE, q).float(), _scale_table(_CHROMA_BASE, q).float()


# --- differentiable rounding -------------------------------------------------

def _round_ste(x: Tensor) -> Tensor:
    """Exact rounding forward, identity gradient backward (straight-through)."""
    return x + (torch.round(x) - x).detach()


def _round_cubic(x: Tensor) -> Tensor:
    """Shin & Song (2017): round(x) + (x - round(x))^3; gradient 3 (x - round(x))^2."""
    r = torch.round(x)
    return r + (x - r) ** 3


def _round_noise(x: Tensor) -> Tensor:
    """Additive uniform noise in [-0.5, 0.5): the train-time quantisation proxy of learned codecs."""
    return x + (torch.rand_like(x) - 0.5)


def _rounder(rounding: str, training: bool) -> Rounder:
    """The rounding function for ``rounding``; "noise" rounds exactly outside training."""
    if rounding == "ste" or (rounding == "noise" and not training):
        return _round_ste
    if rounding == "cubic":
        return _round_cubic
    return _round_noise


# --- colour ------------------------------------------------------------------

def _rgb_to_ycc(x: Tensor) -> Tensor:
    """[0,1] RGB -> level-shifted YCbCr on the 0..255 scale (Y - 128, Cb - 128, Cr - 128)."""
    m = x.new_tensor(_RGB_TO_YCC)
    ycc = torch.einsum("ij,njhw->nihw", m, x * 255.0)
    # Cb and Cr carry a +128 offset that the level shift removes again; only Y shifts.
    return ycc - x.new_tensor([128.0, 0.0, 0.0]).view(1, 3, 1, 1)


def _ycc_to_rgb(ycc: Tensor) -> Tensor:
    """Level-shifted YCbCr (0..255 scale) -> RGB in [0, 1], clamped like the decoder's range limit."""
    m = ycc.new_tensor(_YCC_TO_RGB)
    centred = ycc + ycc.new_tensor([128.0, 0.0, 0.0]).view(1, 3, 1, 1)
    rgb = torch.einsum("ij,njhw->nihw", m, centred)
    return (rgb / 255.0).clamp(0.0, 1.0)


# --- sampling ----------------------------------------------------------------

def _pad_to(x: Tensor, multiple: int) -> Tensor:
    """Replicate edges up to a multiple of ``multiple``, as libjpeg pads partial MCUs."""
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


def _downsample(c: Tensor) -> Tensor:
    """2x2 box average, libjpeg's default h2v2 chroma downsampling."""
    return F.avg_pool2d(c, kernel_size=2, stride=2)


def _upsample(c: Tensor, height: int, width: int) -> Tensor:
    """libjpeg's h2v2 fancy upsampling: triangle (bilinear, half-pixel) filter, edges replicated.

    The chroma plane is first cropped to its true size, ceil(H/2) x ceil(W/2),
    because libjpeg replicates that plane's last row/column, not the padding.
    """
    c = c[..., : (height + 1) // 2, : (width + 1) // 2]
    up = F.interpolate(c, scale_factor=2, mode="bilinear", align_corners=False)
    return up[..., :height, :width]


# --- DCT and quantisation ----------------------------------------------------

def _dct_matrix(like: Tensor) -> Tensor:
    """The 8x8 orthonormal DCT-II matrix D (rows are basis functions): coefficients = D B D^T."""
    k = torch.arange(8, dtype=torch.float64)
    d = torch.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d.to(device=like.device, dtype=like.dtype)


def _blocks(x: Tensor) -> Tensor:
    """[N, C, H, W] -> [N, C, H/8, 8, W/8, 8]: the 8x8 blocks as their own axes."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 8, 8, w // 8, 8)


def _unblocks(b: Tensor) -> Tensor:
    """Inverse of :func:`_blocks`."""
    n, c, hb, _, wb, _ = b.shape
    return b.reshape(n, c, hb * 8, wb * 8)


def _dct(x: Tensor) -> Tensor:
    """Blockwise 8x8 DCT-II of a plane whose sides are multiples of 8."""
    d = _dct_matrix(x)
    return torch.einsum("ui,ncaibj,vj->ncaubv", d, _blocks(x), d)


def _idct(coef: Tensor) -> Tensor:
    """Inverse of :func:`_dct` (D is orthonormal, so D^T C D)."""
    d = _dct_matrix(coef)
    return _unblocks(torch.einsum("ui,ncaubv,vj->ncaibj", d, coef, d))


def _quantise(plane: Tensor, table: Tensor, rnd: Rounder) -> Tensor:
    """DCT, divide by the table, round, multiply back, inverse DCT; round and clamp samples as libjpeg does.

    ``table`` is [8, 8] or per sample [N, 8, 8].
    """
    t = table.to(device=plane.device, dtype=plane.dtype)
    t = t.view(-1, 1, 1, 8, 1, 8)
    coef = _dct(plane)
    decoded = _round_ste(_idct(rnd(coef / t) * t))
    return decoded.clamp(-128.0, 127.0)


# --- public API --------------------------------------------------------------

def _check_options(rounding: str, subsampling: str) -> None:
    """Fail early, at construction, on options the pipeline does not know."""
    if rounding not in ROUNDINGS:
        raise ValueError(f"unknown rounding {rounding!r}: choose from {ROUNDINGS}")
    if subsampling not in SUBSAMPLINGS:
        raise ValueError(f"unknown subsampling {subsampling!r}: choose from {SUBSAMPLINGS}")


def _check_input(x: Tensor) -> None:
    """Reject what the pipeline cannot handle, with a message that says why."""
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"expected an [N, 3, H, W] RGB tensor, got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"expected a floating-point tensor in [0, 1], got {x.dtype}")


def _per_sample_tables(quality: int | Tensor, batch: int) -> tuple[Tensor, Tensor]:
    """Tables shaped [1 or N, 8, 8]; a [N] quality must match the batch size."""
    q = _quality_tensor(quality)
    if q.dim() == 1 and q.numel() not in (1, batch):
        raise ValueError(f"quality has {q.numel()} entries for a batch of {batch}")
    return quant_tables(q.reshape(-1))


def diff_jpeg(
    x: Tensor,
    quality: int | Tensor,
    rounding: str = "ste",
    subsampling: str = "4:2:0",
    *,
    training: bool = True,
) -> Tensor:
    """Compress and decompress ``x`` ([N, 3, H, W] RGB in [0, 1]) like Pillow's JPEG, differentiably.

    ``quality`` is an int or a per-sample [N] tensor (1..100). ``training=False``
    makes ``rounding="noise"`` round exactly, so evaluation sees a real quantiser.
    Returns a tensor of the input's shape, dtype and device, clamped to [0, 1].
    """
    _check_options(rounding, subsampling)
    _check_input(x)
    luma_q, chroma_q = _per_sample_tables(quality, x.shape[0])
    rnd = _rounder(rounding, training)
    height, width = x.shape[-2:]

    # libjpeg codes 8-bit YCbCr samples, so round them (straight-through).
    ycc = _round_ste(_rgb_to_ycc(_pad_to(x, _MCU)))
    luma, chroma = ycc[:, :1], ycc[:, 1:]
    if subsampling == "4:2:0":
        chroma = _downsample(chroma)

    luma = _quantise(luma, luma_q, rnd)
    chroma = _quantise(chroma, chroma_q, rnd)

    if subsampling == "4:2:0":
        chroma = _upsample(chroma, height, width)
    else:
        chroma = chroma[..., :height, :width]
    out = _ycc_to_rgb(torch.cat([luma[..., :height, :width], chroma], dim=1))
    return out.to(x.dtype)


class DiffJPEG(nn.Module):
    """Differentiable JPEG round trip as a layer; "noise" rounding only adds noise in train mode."""

    def __init__(self, rounding: str = "ste", subsampling: str = "4:2:0") -> None:
        super().__init__()
        _check_options(rounding, subsampling)
        self.rounding = rounding
        self.subsampling = subsampling

    def forward(self, x: Tensor, quality: int | Tensor) -> Tensor:
        """JPEG-compress and decode ``x`` at ``quality`` (int or per-sample [N] tensor)."""
        return diff_jpeg(x, quality, self.rounding, self.subsampling, training=self.training)

    def extra_repr(self) -> str:
        return f"rounding={self.rounding!r}, subsampling={self.subsampling!r}"


# --- rate --------------------------------------------------------------------

#: Bits per unit of each rate feature (see :func:`jpeg_bits`): luma AC, luma DC
#: difference, chroma AC, chroma DC difference, and a constant (headers and
#: Huffman tables). Least-squares fit of relative error to Pillow's file sizes
#: (optimised Huffman tables, 4:2:0, the LR codec's settings) over Kodak's 24
#: images x2-downscaled by bicubic and by irn-x2-jpeg-small, at quality 20-95;
#: ``python benchmarks/rate_proxy.py --fit`` refits them and reports the error.
RATE_COEFFICIENTS = (2.748, 2.983, 1.226, 3.288, 138.0)
#: The same features weighed for the size of the LR codec's lossy WebP at the same
#: quality number, fitted (kept >= 0) on the same LR images with the WebP model
#: (``python benchmarks/rate_proxy.py --codec webp --fit``): WebP's block
#: prediction and 4x4 transform make it a rougher estimate than JPEG's (mean error
#: 11 % on Kodak, 14 % held out on Set14, Pearson 0.98), but its gradient points the
#: same way, which is what a rate loss needs; only the luma AC term survives the fit.
WEBP_RATE_COEFFICIENTS = (2.669, 0.0, 0.0, 0.0, 0.0)


def _log_magnitude(u: Tensor) -> Tensor:
    """log2(1 + |u|): about the size category plus sign bits JPEG spends on a coefficient of |u| steps."""
    return torch.log2(1.0 + u.abs())


def _plane_rate_features(plane: Tensor, table: Tensor) -> tuple[Tensor, Tensor]:
    """(AC, DC-difference) features of one component, per image: sums of log2(1 + |q|).

    DC coefficients are coded as differences from the previous block's, so the
    DC feature is taken over differences along the raster order of blocks.
    """
    t = table.to(device=plane.device, dtype=plane.dtype).view(-1, 1, 1, 8, 1, 8)
    steps = _dct(plane) / t  # [N, C, H/8, 8, W/8, 8], unrounded quantiser steps
    dc = steps[:, :, :, 0, :, 0]
    ac = _log_magnitude(steps).sum(dim=(1, 2, 3, 4, 5)) - _log_magnitude(dc).sum(dim=(1, 2, 3))
    dc_diff = _log_magnitude(torch.diff(dc.flatten(2), dim=2)).sum(dim=(1, 2))
    return ac, dc_diff


def jpeg_rate_features(x: Tensor, quality: int | Tensor) -> Tensor:
    """The features :data:`RATE_COEFFICIENTS` weigh, per image: [N, 5] (luma AC, luma DC
    differences, chroma AC, chroma DC differences, 1), for 4:2:0 (see :func:`jpeg_bits`)."""
    _check_input(x)
    luma_q, chroma_q = _per_sample_tables(quality, x.shape[0])
    ycc = _round_ste(_rgb_to_ycc(_pad_to(x.float(), _MCU)))
    luma_ac, luma_dc = _plane_rate_features(ycc[:, :1], luma_q)
    chroma_ac, chroma_dc = _plane_rate_features(_downsample(ycc[:, 1:]), chroma_q)
    return torch.stack([luma_ac, luma_dc, chroma_ac, chroma_dc, torch.ones_like(luma_ac)], dim=1)


def jpeg_bits(x: Tensor, quality: int | Tensor, subsampling: str = "4:2:0") -> Tensor:
    """Estimated size in bits of Pillow's baseline JPEG of ``x`` ([N, 3, H, W] RGB in [0, 1]), per image.

    Differentiable, so it can be a rate loss. A linear model in per-component
    sums of log2(1 + |coefficient / step|) over the quantiser's input (the
    bits JPEG spends on a coefficient grow with the log of its magnitude in
    quantiser steps; zero costs about nothing), AC and differenced DC apart,
    with the :data:`RATE_COEFFICIENTS` calibrated against real files.
    Calibrated for optimised Huffman tables and 4:2:0, the LR codec's
    settings; ``benchmarks/rate_proxy.py`` measures its error per quality.
    Returns a float [N] tensor.
    """
    _check_options("ste", subsampling)
    if subsampling != "4:2:0":
        raise ValueError("jpeg_bits is calibrated for 4:2:0 only")
    features = jpeg_rate_features(x, quality)
    return features @ features.new_tensor(RATE_COEFFICIENTS)


def webp_bits(x: Tensor, quality: int | Tensor) -> Tensor:
    """Estimated size in bits of the LR codec's lossy WebP of ``x`` at ``quality``, per image.

    The JPEG features of :func:`jpeg_bits` weighed by :data:`WEBP_RATE_COEFFICIENTS`:
    a rougher estimate than JPEG's (see there), for rate-aware training of the WebP
    path. Differentiable; returns a float [N] tensor.
    """
    features = jpeg_rate_features(x, quality)
    return features @ features.new_tensor(WEBP_RATE_COEFFICIENTS)
