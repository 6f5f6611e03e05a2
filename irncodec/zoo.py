"""Pretrained models: named weights shipped with the package, loaded without pickle.

Weights live in ``irncodec/weights/NAME.safetensors`` (fp16 where quality
allows; loaded as float32), with the architecture stored in the file's
metadata. ``weights/manifest.json`` lists every shipped model with the SHA-256
of its file, checked on load, and ``weights/NAME.json`` records how it was
trained. A path to any ``.safetensors`` file written by :func:`export` can be
used wherever a model name is accepted.
"""

from __future__ import annotations

import hashlib
import json
import os
import weakref
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .container import FINGERPRINT_SIZE, is_valid_model_name
from .errors import ModelError
from .fileio import atomic_write_bytes
from .lr_codecs import codec_class
from .models import IRN, IRNConfig

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"
WEIGHTS_FORMAT = "irncodec-weights-1"

#: The plain (lossless-LR) model for each scale.
DEFAULT_MODELS = {2: "irn-x2-small-v3", 4: "irn-x4-small"}
#: Models trained through a lossy LR codec (SAIN-style), preferred when encoding with it.
#: A retrained default gets a new name here; the model it replaces stays shipped for old files.
CODEC_MODELS = {(2, "jpeg"): "sain-x2-jpeg-rate-v2", (4, "jpeg"): "irn-x4-jpeg-rate",
                (2, "webp"): "irn-x2-webp-rate"}
#: For codecs whose every quality is its own model (``per_level_models``, such as
#: the learned entropy coder): the model of each (scale, level). A retrained
#: level gets a new name (files name their model, so the old one stays shipped).
#: Each runs its coder in integers (``-exact``), so its files decode the same everywhere.
LEVEL_MODELS = {"entropy": {(2, 1): "irn-x2-entropy-q1-v2-exact", (2, 2): "irn-x2-entropy-q2-v2-exact",
                            (2, 3): "irn-x2-entropy-q3-v3-exact", (2, 4): "irn-x2-entropy-q4-v4-exact",
                            (2, 5): "irn-x2-entropy-q5-exact"}}
#: A manifest entry's ``arithmetic`` for models whose entropy coder runs in integers.
EXACT = "exact"
#: Weights kept in float32 on export: the entropy models' CDF inputs (small, and
#: the coder must rebuild exactly what it was trained with).
FP32_KEYS = ("entropy_bottleneck.", "gaussian_conditional.")


def levels(codec: str, scale: int) -> list[int]:
    """The qualities of a per-level codec (each its own model) shipped at ``scale``; [] for others."""
    manifest = _manifest()
    return sorted(q for (s, q), name in LEVEL_MODELS.get(codec, {}).items() if s == scale and name in manifest)


def default_model(scale: int, codec: str, quality: int | None = None) -> str:
    """The model ``encode`` uses when none is named.

    For a codec whose qualities are models (the entropy coder), the model of
    that level; otherwise one trained for ``codec`` at ``scale`` if it is
    shipped, else the plain model for ``scale``.
    """
    if scale not in DEFAULT_MODELS:
        raise ModelError(f"unsupported scale {scale}: choose from {sorted(DEFAULT_MODELS)}")
    if codec_class(codec).per_level_models:
        shipped = levels(codec, scale)
        if quality not in shipped:
            listed = ", ".join(map(str, shipped)) or "none"
            raise ModelError(f"no x{scale} {codec} model for quality {quality}: shipped levels are {listed}")
        return LEVEL_MODELS[codec][(scale, quality)]
    name = CODEC_MODELS.get((scale, codec))
    return name if name in _manifest() else DEFAULT_MODELS[scale]


def _manifest() -> dict[str, dict[str, Any]]:
    if not MANIFEST.exists():
        return {}
    with open(MANIFEST) as f:
        return json.load(f)


def available_models() -> dict[str, dict[str, Any]]:
    """Shipped models by name, with scale, parameters and description."""
    return _manifest()


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _resolve(name_or_path: str) -> tuple[Path, str | None]:
    """Weights file for a model name or path, and the SHA-256 it must have."""
    entry = _manifest().get(name_or_path)
    if entry is not None:
        path = WEIGHTS_DIR / entry["file"]
        if not path.exists():
            raise ModelError(f"weights of model '{name_or_path}' are missing: {path} (reinstall irncodec)")
        return path, entry["sha256"]
    path = Path(name_or_path)
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise ModelError(f"weights file not found: {path}")
        return path, None
    known = ", ".join(sorted(_manifest())) or "none installed"
    raise ModelError(f"unknown model '{name_or_path}': choose from {known}, or give a .safetensors path")


def model_scale(name_or_path: str) -> int:
    """The scale of a zoo model or weights file, without building the network."""
    entry = _manifest().get(name_or_path)
    if entry is not None:
        return int(entry["scale"])
    return read_weights(_resolve(name_or_path)[0])[0].scale


def model_name_for(name_or_path: str) -> str:
    """The identifier stored in ``.irn`` headers: the name, or a weights file's stem."""
    name = name_or_path if name_or_path in _manifest() else Path(name_or_path).stem
    if not is_valid_model_name(name):
        raise ModelError(f"model name '{name}' must be 1-64 characters of A-Z a-z 0-9 . _ -")
    return name


def read_weights(path: str | os.PathLike) -> tuple[IRNConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """Config, float32 state dict and training record from a weights file."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"cannot read weights {path}: {exc}") from None
    if meta.get("format") != WEIGHTS_FORMAT:
        raise ModelError(f"{path} is not an irncodec weights file (format {meta.get('format')!r})")
    try:
        config = IRNConfig.from_dict(json.loads(meta["config"]))
        record = json.loads(meta.get("record", "{}"))
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelError(f"{path} has invalid metadata: {exc}") from None
    return config, {k: v.float() for k, v in tensors.items()}, record


_FINGERPRINTS: weakref.WeakKeyDictionary[IRN, bytes] = weakref.WeakKeyDictionary()


def fingerprint(model: IRN) -> bytes:
    """A short hash of every tensor of ``model`` (weights and buffers, as float32).

    ``.irn`` files (format version 2) store it, so a file is never decoded with
    weights other than those that made it, whatever their name or path. It
    does not depend on the device or on how the weights were stored on disk
    beyond their values. Cached per model object: models used for coding are
    not changed after loading.
    """
    cached = _FINGERPRINTS.get(model)
    if cached is not None:
        return cached
    digest = hashlib.sha256(b"irncodec-weights-fingerprint-1")
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu")
        if t.is_floating_point():
            t = t.to(torch.float32)
        array = t.contiguous().numpy()
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        data = array.tobytes()
        meta = f"{name}\0{array.dtype.str}\0{tuple(t.shape)}\0{len(data)}\0"
        digest.update(meta.encode())
        digest.update(data)
    value = digest.digest()[:FINGERPRINT_SIZE]
    _FINGERPRINTS[model] = value
    return value


@lru_cache(maxsize=16)
def _load_cached(name_or_path: str, version: tuple[int, int] | None = None) -> IRN:
    """The model, loaded once per name, or per path and file version (mtime, size)."""
    path, expected_sha = _resolve(name_or_path)
    if expected_sha is not None and sha256_file(path) != expected_sha:
        raise ModelError(f"weights of model '{name_or_path}' fail their checksum: {path} is corrupt")
    config, state, _ = read_weights(path)
    try:
        model = IRN(config)
        model.load_state_dict(state)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ModelError(f"weights {path} do not match their architecture: {str(exc).splitlines()[0]}") from None
    if (_manifest().get(name_or_path) or {}).get("arithmetic") == EXACT:
        if model.lr_coder is None:
            raise ModelError(f"model '{name_or_path}' has no entropy coder to run in integers")
        model.lr_coder.make_exact()
    return model.eval().requires_grad_(False)


def load_model(name_or_path: str, device: str | torch.device = "cpu") -> IRN:
    """A pretrained model by zoo name or ``.safetensors`` path, ready for inference.

    Loaded models are cached; a weights file changed on disk is loaded again.
    """
    key = str(name_or_path)
    version = None
    if Path(key).suffix == ".safetensors":  # a path (zoo names are resolved once, in the cache)
        try:
            st = os.stat(key)
            version = (st.st_mtime_ns, st.st_size)
        except OSError:
            pass  # _resolve reports it
    return _load_cached(key, version).to(device)


def export(model: IRN, path: str | os.PathLike, record: dict[str, Any] | None = None,
           half: bool = True, exact_coder: bool = False) -> None:
    """Write a model as safetensors, fp16 by default, with its config in the metadata.

    An entropy coder's CDF tables are built first (``update``, with the
    hyper-latent's quantiles solved exactly rather than left to the auxiliary
    loss) and stored, so decoding never rebuilds them; its entropy-model
    parameters stay float32. ``exact_coder`` makes the entropy coder run in
    integers wherever the weights are loaded (streams that decode the same on
    every machine).
    """
    if model.lr_coder is not None:
        model.lr_coder.update(force=True, update_quantiles=True)
        if exact_coder:
            model.lr_coder.make_exact()
    elif exact_coder:
        raise ModelError("exact_coder: the model has no entropy coder")
    state = {k: (v.half() if half and v.is_floating_point() and not any(f in k for f in FP32_KEYS) else v)
             .contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": WEIGHTS_FORMAT,
        "config": json.dumps(model.config.to_dict()),
        "record": json.dumps(record or {}),
    }
    atomic_write_bytes(path, save(state, metadata=metadata))


def register_exact(name: str, source: str, description: str, record: dict[str, Any]) -> None:
    """Ship shipped model ``source``'s weights again as ``name``, its entropy coder run in integers.

    The manifest entry names the same weights file (no copy); loading it makes
    the coder exact (``LRHyperprior.make_exact``), which also changes its
    weights fingerprint, so files of the two never decode with the other.
    """
    manifest = _manifest()
    if name in manifest:
        raise ModelError(f"model '{name}' is already shipped: a shipped model is never changed")
    entry = dict(manifest[source])
    entry.update(description=description, arithmetic=EXACT)
    manifest[name] = entry
    _write_entry(manifest, name, record)


def register(name: str, description: str, record: dict[str, Any]) -> None:
    """Add or update a shipped model in the manifest (used when releasing weights)."""
    path = WEIGHTS_DIR / f"{name}.safetensors"
    config, _, _ = read_weights(path)
    manifest = _manifest()
    manifest[name] = {
        "file": path.name,
        "sha256": sha256_file(path),
        "scale": config.scale,
        "parameters": record.get("parameters"),
        "description": description,
    }
    _write_entry(manifest, name, record)


def _write_entry(manifest: dict[str, dict[str, Any]], name: str, record: dict[str, Any]) -> None:
    """Write the manifest (sorted) and model ``name``'s training record."""
    with open(MANIFEST, "w") as f:
        json.dump(dict(sorted(manifest.items())), f, indent=2)
        f.write("\n")
    with open(WEIGHTS_DIR / f"{name}.json", "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    _load_cached.cache_clear()
