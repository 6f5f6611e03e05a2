"""The learned LR entropy coder: CompressAI's rANS with the model's own hyperprior."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from PIL import Image

from ..errors import CodecError, ModelError
from .base import LRCodec, register_codec

if TYPE_CHECKING:
    from ..models import IRN


@register_codec
class EntropyCodec(LRCodec):
    """The learned entropy coder of an ``lr_coder: hyperprior`` model (CompressAI's rANS).

    Unlike the Pillow codecs it needs the model's coder to encode and decode,
    so it is built with one: ``get_codec("entropy", coder=model.lr_coder)``.
    Its quality is a rate level (1 = smallest files), in the style of
    CompressAI's zoo: each level is its own jointly trained model, and the
    zoo picks the model for a level (:func:`irncodec.zoo.default_model`).
    ``step`` (0.25 to 4, in thousandths) scales the level's quantisation steps
    for the rates between levels (rate control uses it: :mod:`irncodec.ratecontrol`);
    a stream records its step, so decoding needs no option.
    """

    name = "entropy"
    file_id = 3
    lossless = False
    per_level_models = True
    needs_model = True
    min_quality, max_quality, default_quality = 1, 8, 2
    #: Where a level's quality holds up against its neighbours' (benchmarks/entropy_step.py).
    step_range = (0.5, 2.5)

    def __init__(self, coder: Any = None, step: float = 1.0) -> None:
        from .step_block import step_milli

        try:
            self.step = step_milli(step) / 1000
        except ValueError as err:
            raise CodecError(str(err)) from None
        self.coder = coder

    @classmethod
    def for_model(cls, net: IRN, model_ref: str, **options: Any) -> EntropyCodec:
        if net.lr_coder is None:
            raise ModelError(f"model '{model_ref}' has no entropy coder: the entropy codec needs an "
                             "irn-x*-entropy-q* model (see 'irncodec models')")
        return cls(net.lr_coder, **options)

    @classmethod
    def for_training(cls, net: IRN) -> LRCodec:
        """The coder of a model still in training, on a copy whose CDF tables are built
        from its current weights (as export does), so training's buffers stay untouched."""
        coder = copy.deepcopy(cls.for_model(net, "the model in training").coder).eval()
        coder.update(force=True, update_quantiles=True)
        return cls(coder=coder)

    @classmethod
    def quality_help(cls) -> str:
        return "a shipped rate level (1 = smallest; see models)"

    def _ready_coder(self) -> Any:
        if self.coder is None or not self.coder.is_ready:
            raise CodecError("the entropy LR codec needs a model with a trained entropy coder "
                             "(see 'irncodec models')")
        return self.coder

    def encode(self, image: Image.Image, quality: int) -> bytes:
        return self.encode_with_reconstruction(image, quality)[0]

    def encode_with_reconstruction(self, image: Image.Image, quality: int) -> tuple[bytes, Image.Image]:
        """The payload and the LR image a decoder will get from it (bit-exact on this machine)."""
        import numpy as np  # torch only when a learned coder runs: the CLI starts without it
        import torch

        from ..tensors import pixels_to_tensor, tensor_to_pixels

        self.validate_quality(quality)
        coder = self._ready_coder()
        if image.mode != "RGB":
            raise CodecError(f"LR codecs store 8-bit RGB images, got mode '{image.mode}'")
        with torch.no_grad():
            coded = coder.compress(pixels_to_tensor(np.asarray(image), next(coder.parameters()).device), self.step)
        return coded.payload, Image.fromarray(tensor_to_pixels(coded.lr_hat), "RGB")

    @classmethod
    def describe(cls, payload: bytes) -> str:
        from .step_block import StreamError, stream_step

        try:
            step = stream_step(payload)
        except StreamError as err:
            return f"damaged step block ({err})"
        return "" if step == 1 else f"step {step:g}"

    def format_version(self, payload: bytes) -> int:
        """Version 3 for a stream with a step block (older readers would misread it)."""
        from .step_block import StreamError, stream_step

        try:
            return 3 if stream_step(payload) != 1 else 1
        except StreamError:
            return 1

    def decode(self, data: bytes, size: tuple[int, int]) -> Image.Image:
        import torch

        from ..tensors import tensor_to_pixels
        from .step_block import StreamError

        coder = self._ready_coder()
        width, height = size
        try:
            with torch.no_grad():
                lr = coder.decompress(bytes(data), (height, width))
        except (StreamError, RuntimeError, ValueError, OverflowError) as err:
            raise CodecError(f"LR payload is not a valid entropy-coded stream: {err}") from None
        return Image.fromarray(tensor_to_pixels(lr), "RGB")

