"""The LR codec interface and its registry.

A codec is one class, registered under its short name with ``@register_codec``.
The class says everything the rest of irncodec asks about it, so nothing
outside its module names it: its id in the ``.irn`` header (``file_id``), its
quality range, its options and their choices (the CLI's flags come from
them), whether each quality is its own model (the zoo picks it) and whether
decoding needs the model's weights.
"""

from __future__ import annotations

import inspect
import operator
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from PIL import Image

from ..errors import CodecError

if TYPE_CHECKING:
    from ..models import IRN

_REGISTRY: dict[str, type[LRCodec]] = {}


class LRCodec(ABC):
    """Stores an 8-bit RGB image as bytes and reads it back."""

    name: ClassVar[str]
    #: The codec's id in the ``.irn`` header (docs/format.md): fixed forever once
    #: a file has been written with it.
    file_id: ClassVar[int]
    lossless: ClassVar[bool]
    #: Whether each quality is its own jointly trained model (the zoo picks it),
    #: rather than a setting of one codec applied to any model's LR image.
    per_level_models: ClassVar[bool] = False
    #: Whether encoding and decoding need the model's weights (a learned coder),
    #: so even the stored LR image cannot be read without them.
    needs_model: ClassVar[bool] = False
    #: For codecs whose constructor takes ``step`` (a multiplier of a level's
    #: quantisation steps, for rates between levels): the steps rate control
    #: searches, smallest (most bits) to largest. None: no such option.
    step_range: ClassVar[tuple[float, float] | None] = None
    #: Constructor options and their allowed values, e.g. ``{"subsampling": (...)}``
    #: (the CLI's choices; the constructor refuses other values).
    options: ClassVar[dict[str, tuple[str, ...]]] = {}
    min_quality: ClassVar[int]
    max_quality: ClassVar[int]
    default_quality: ClassVar[int]
    #: File name extensions of the standard image format a payload of this codec
    #: is, so that an ``.irn`` file can be written as one (``embed``/``extract``,
    #: :mod:`irncodec.viewable`); the first is the usual one. Empty: it cannot.
    suffixes: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def for_model(cls, net: IRN, model_ref: str, **options: Any) -> LRCodec:
        """The codec as used with the network ``net`` (named ``model_ref`` in errors).

        Codecs that store any image ignore the network; a learned coder takes
        its coder from it.
        """
        return get_codec(cls.name, **options)

    @classmethod
    def for_training(cls, net: IRN) -> LRCodec:
        """The codec for validating ``net`` while it trains (a learned coder may need
        to be prepared from its current weights first)."""
        return cls.for_model(net, "the model in training")

    @classmethod
    def quality_help(cls) -> str:
        """What ``-q`` means for this codec, for help texts."""
        if cls.lossless:
            return "none (lossless)"
        return f"{cls.min_quality}-{cls.max_quality}"

    def validate_quality(self, quality: int) -> int:
        """The quality to store in the header; CodecError if out of range.

        Lossless codecs have no quality, so any integer maps to 0.
        """
        quality = _as_int(quality)
        if self.lossless:
            return 0
        if not self.min_quality <= quality <= self.max_quality:
            raise CodecError(f"{self.name} quality must be {self.min_quality}..{self.max_quality}, got {quality}")
        return quality

    @abstractmethod
    def encode(self, image: Image.Image, quality: int) -> bytes:
        """The payload for an 8-bit RGB image."""

    @abstractmethod
    def decode(self, data: bytes, size: tuple[int, int]) -> Image.Image:
        """The RGB image of ``size`` (width, height) in a payload of this codec.

        Raises CodecError if the payload is not a complete, valid stream of
        this codec's format, or is not exactly ``size``.
        """

    def format_version(self, payload: bytes) -> int:
        """The oldest ``.irn`` format version whose readers decode ``payload`` (docs/format.md):
        a codec whose payload layout grows says so, and files use the newer version only then."""
        return 1

    @classmethod
    def embed(cls, payload: bytes, carried: bytes) -> bytes:
        """The payload as a standard file of its format that also holds ``carried`` in a
        metadata segment viewers ignore (codecs with ``suffixes`` implement this)."""
        raise CodecError(f"{cls.name} payloads cannot be written as a standard image file")

    @classmethod
    def extract(cls, data: bytes) -> tuple[bytes, bytes | None] | None:
        """None if ``data`` is not a file of this codec's format; else the payload as it was
        before ``embed`` and the carried bytes (None when the file carries none)."""
        return None

    @classmethod
    def describe(cls, payload: bytes) -> str:
        """Settings a payload records beyond the header's quality, for ``irncodec info`` ("" if none)."""
        return ""

    def encode_with_reconstruction(self, image: Image.Image, quality: int) -> tuple[bytes, Image.Image]:
        """The payload and the image a decoder will get from it (codecs that know it sooner override this)."""
        data = self.encode(image, quality)
        return data, self.decode(data, image.size)


def _as_int(quality: Any) -> int:
    """``quality`` as an int (numpy ints too), or CodecError for floats, strings, bools."""
    if isinstance(quality, bool):
        raise CodecError(f"quality must be an integer, got {quality!r}")
    try:
        return operator.index(quality)
    except TypeError:
        raise CodecError(f"quality must be an integer, got {quality!r}") from None


# --- registry ----------------------------------------------------------------------

def register_codec(cls: type[LRCodec]) -> type[LRCodec]:
    """Class decorator: make ``cls`` available to :func:`get_codec` under ``cls.name``.

    Names and file ids are unique: a second class may not take either.
    """
    existing = _REGISTRY.get(cls.name)
    if existing is not None and _qualified(existing) != _qualified(cls):
        raise ValueError(f"LR codec name '{cls.name}' is already taken by {_qualified(existing)}")
    file_id = getattr(cls, "file_id", None)
    if not isinstance(file_id, int) or not 0 <= file_id <= 255:
        raise ValueError(f"LR codec '{cls.name}' needs a file_id in 0..255, got {file_id!r}")
    for other in _REGISTRY.values():
        if other.file_id == file_id and other.name != cls.name:
            raise ValueError(f"file id {file_id} of LR codec '{cls.name}' is already taken by '{other.name}'")
    _REGISTRY[cls.name] = cls
    return cls


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def available_codecs() -> list[str]:
    """Names of the registered LR codecs, sorted."""
    return sorted(_REGISTRY)


def codec_class(name: str) -> type[LRCodec]:
    """The class registered as ``name``; CodecError naming the choices if there is none."""
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise CodecError(f"unknown LR codec {name!r}: choose from {', '.join(available_codecs())}")
    return cls


def codec_ids() -> dict[str, int]:
    """Every registered codec's id in the ``.irn`` header, by name."""
    return {name: cls.file_id for name, cls in sorted(_REGISTRY.items(), key=lambda kv: kv[1].file_id)}


def codecs_with_option(option: str) -> list[str]:
    """Names of the codecs that take ``option``."""
    return [name for name in available_codecs() if option in _REGISTRY[name].options]


def option_choices(option: str) -> list[str]:
    """Every value any codec allows for ``option``, in the order the codecs list them."""
    choices: list[str] = []
    for name in codecs_with_option(option):
        choices += [c for c in _REGISTRY[name].options[option] if c not in choices]
    return choices


def get_codec(name: str, **options: Any) -> LRCodec:
    """A codec instance by name; ``options`` go to its constructor (e.g. jpeg's subsampling)."""
    cls = codec_class(name)
    try:
        inspect.signature(cls).bind(**options)
    except TypeError:
        raise CodecError(f"LR codec '{name}' does not take option(s) {', '.join(sorted(options))}") from None
    return cls(**options)  # the codec checks its options' values itself
