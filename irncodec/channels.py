"""What happens to the LR image between encoder and decoder, as a training layer.

A *channel* takes the 8-bit LR batch [N, 3, h, w] and returns what the decoder
will see, keeping gradients so the downscaler learns to survive it
(SAIN-style compression-aware training):

* ``jpeg``: the differentiable JPEG of :mod:`irncodec.jpeg_proxy`;
* ``jpeg`` with ``real_codec``: Pillow's real JPEG in the forward pass and the
  proxy's gradient in the backward pass (straight-through), so training sees
  libjpeg's exact output, integer DCT and all;
* ``webp``: Pillow's real WebP in the forward pass, the JPEG proxy's gradient
  at the same quality number in the backward pass. There is no differentiable
  WebP here; both codecs quantise a 4:2:0 block transform of YCbCr, so the
  JPEG proxy's Jacobian (which pixels' changes survive quantisation) is a
  reasonable stand-in, while the forward pass, and with it the reconstruction
  loss the inverse learns from, is real WebP.

Each image of a batch gets its own quality, drawn uniformly from a range with
the global torch RNG (which training checkpoints, so runs resume exactly).

A channel returns what the decoder sees and, when asked for (``rate=True``),
the estimated size of each image's file in bits, so training can weigh bits
against quality: :func:`irncodec.jpeg_proxy.jpeg_bits` for ``jpeg``,
:func:`irncodec.jpeg_proxy.webp_bits` (the same features refitted to WebP's
sizes, a rougher estimate) for ``webp``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .errors import ConfigError
from .jpeg_proxy import DiffJPEG, jpeg_bits, webp_bits
from .lr_codecs import get_codec
from .tensors import image_to_tensor, tensor_to_image

#: LR batch -> (what the decoder sees, estimated bits per image or None).
Channel = Callable[[Tensor], tuple[Tensor, Tensor | None]]

#: Channel kinds (``lr_proxy`` values).
KINDS = ("jpeg", "webp")
#: Kinds with a differentiable proxy of their own, so they can run without the
#: real codec; the others always put the real codec in the forward pass.
DIFFERENTIABLE_KINDS = frozenset({"jpeg"})
#: Each kind's differentiable estimate of its file size in bits (rate-aware training).
RATE_ESTIMATES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"jpeg": jpeg_bits, "webp": webp_bits}


def real_roundtrip(x: Tensor, codec: str, quality: int | Sequence[int]) -> Tensor:
    """Each image of ``x`` [N,3,h,w] through a real LR codec and back (no gradient)."""
    qualities = [quality] * x.shape[0] if isinstance(quality, int) else list(quality)
    lr_codec = get_codec(codec)
    out = []
    for image, q in zip(x.detach(), qualities):
        pil = tensor_to_image(image)
        out.append(image_to_tensor(lr_codec.decode(lr_codec.encode(pil, int(q)), pil.size)))
    return torch.cat(out).to(x.device, x.dtype)


def make_channel(kind: str, quality_range: Sequence[int], real_codec: bool = False,
                 rate: bool = False) -> Channel:
    """A training channel (see the module docstring) at qualities drawn from ``quality_range``.

    ``rate`` adds each image's estimated file size in bits (differentiable).
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown lr_proxy '{kind}': choose from {', '.join(KINDS)}, or leave it out")
    low, high = (int(q) for q in quality_range)
    if not 1 <= low <= high <= 100:
        raise ConfigError(f"lr_quality_range must be 1 <= low <= high <= 100, got {list(quality_range)}")
    if rate and kind not in RATE_ESTIMATES:
        raise ConfigError(f"no rate estimate for '{kind}': rate-aware training (lambda_rate > 0) "
                          f"needs lr_proxy {' or '.join(sorted(RATE_ESTIMATES))}")
    estimate = RATE_ESTIMATES[kind] if rate else None
    real_codec = real_codec or kind not in DIFFERENTIABLE_KINDS
    proxy = DiffJPEG(rounding="ste", subsampling="4:2:0")

    def channel(lr: Tensor) -> tuple[Tensor, Tensor | None]:
        quality = torch.randint(low, high + 1, (lr.shape[0],)).to(lr.device)
        bits = estimate(lr, quality) if estimate is not None else None
        approx = proxy(lr, quality)
        if real_codec:
            approx = approx + (real_roundtrip(lr, kind, quality.tolist()) - approx).detach()
        return approx, bits

    return channel
