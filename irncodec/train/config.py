"""A training run's settings, read from YAML (see ``configs/``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..models import IRNConfig

#: Config keys of earlier versions and their names now: ``lr`` meant the learning
#: rate in these and the low-resolution image in ``lr_proxy`` & co.
RENAMED_KEYS = {"lr": "learning_rate", "lr_milestones": "learning_rate_milestones",
                "lr_gamma": "learning_rate_gamma", "coder_lr": "coder_learning_rate",
                "aux_lr": "aux_learning_rate"}
#: Values of ``precision``.
PRECISIONS = ("fp32", "bf16")


@dataclass
class TrainConfig:
    """Everything a run needs; loaded from YAML (see configs/)."""

    name: str
    model: IRNConfig
    train_dirs: list[str]
    val_dir: str | None = None
    val_images: int = 4
    val_crop: int = 256
    patch_size: int = 96
    #: Enlarge factors [low, high] drawn per crop (a smaller region resampled up to the
    #: patch size, as the codec resamples an image for a scale below the network's, e.g.
    #: 4/3 for scale 1.5 with an x2 network); None: crops as they are.
    enlarge_range: list[float] | None = None
    batch_size: int = 16
    iterations: int = 10000
    learning_rate: float = 2e-4
    weight_decay: float = 1e-5
    #: Where the learning rate is multiplied by ``learning_rate_gamma``, as fractions of the run.
    learning_rate_milestones: list[float] = field(default_factory=lambda: [0.5, 0.75, 0.9])
    learning_rate_gamma: float = 0.5
    grad_clip: float = 10.0
    lambda_guide: float = 4.0
    lambda_distr: float = 1.0
    lambda_recon: float = 1.0
    #: Spread of the z that the recon loss decodes with, as a fraction of the prior's:
    #: 1 draws it from the prior, as IRN does; 0 takes the prior's mean, which is
    #: what decoding uses by default (``decode_temperature`` 0), so training
    #: optimises the reconstruction users get.
    recon_temperature: float = 1.0
    seed: int = 0
    checkpoint_every: int = 500
    val_every: int = 1000
    log_every: int = 50
    threads: int | None = None
    #: Weights (zoo name or .safetensors) to start a new run from, e.g. to
    #: fine-tune a shipped model; ignored when resuming from a checkpoint.
    init_from: str | None = None
    #: Train through a compressed LR image: None (lossless), "jpeg" or "webp",
    #: quality drawn per image from ``lr_quality_range`` (see irncodec.channels).
    lr_proxy: str | None = None
    lr_quality_range: list[int] = field(default_factory=lambda: [30, 95])
    #: Forward through Pillow's real encoder, gradients from the proxy (always on for webp).
    lr_real_codec: bool = False
    #: Weight of SAIN's compression-simulation loss (SAIN models only).
    lambda_sim: float = 4.0
    #: Qualities at which validation also measures PSNR through the real codec.
    val_qualities: list[int] = field(default_factory=lambda: [30, 90])
    #: "auto" (a GPU when there is one), "cpu" or "cuda".
    device: str = "auto"
    #: Weight of the LR image's rate (bits per image): required by models with an
    #: LR entropy coder, optional (rate-aware training) through a jpeg lr_proxy.
    lambda_rate: float = 0.0
    #: Learning rate of the entropy coder's auxiliary (quantile) optimizer.
    aux_learning_rate: float = 1.0e-3
    #: Learning rate of the entropy coder's networks (default: ``learning_rate``); a
    #: coder trained from scratch next to a pretrained rescaler wants a larger one.
    coder_learning_rate: float | None = None
    #: Iterations at the start during which only the entropy coder learns, so a
    #: pretrained rescaler is not pushed around by a coder that is still random.
    coder_warmup: int = 0
    #: "fp32", or "bf16": the rescaling network's passes under bf16 autocast (the
    #: LR channel, the entropy coder and the losses stay fp32). See
    #: ``benchmarks/train_speed.py`` for what each option buys on a machine.
    precision: str = "fp32"
    #: Keep the network and batches in channels-last memory layout.
    channels_last: bool = False

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> TrainConfig:
        """Load a config; relative folders are taken from the YAML file's folder.

        ``overrides`` replace top-level keys (``model`` is merged key by key);
        their folders must be absolute or relative to the working directory.
        """
        try:
            with open(path) as f:
                raw = yaml.safe_load(f)
            if not isinstance(raw, dict):
                raise ValueError("expected a mapping at the top level")
            raw = resolve_data_paths(renamed_keys(raw), Path(path).resolve().parent)
            for key, value in resolve_data_paths(renamed_keys(overrides or {}), Path.cwd()).items():
                raw[key] = {**raw.get("model", {}), **value} if key == "model" else value
            raw["model"] = IRNConfig.from_dict(raw.get("model", {}))
            return cls(**raw)
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad training config {path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["model"] = self.model.to_dict()
        return out


def renamed_keys(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the keys of older configs (``lr`` for the learning rate, where
    ``lr_`` elsewhere means the low-resolution image) under their current names."""
    out = dict(values)
    for old, new in RENAMED_KEYS.items():
        if old in out:
            if new in out:
                raise ValueError(f"give {new} or its old name {old}, not both")
            out[new] = out.pop(old)
    return out


def resolve_data_paths(values: dict[str, Any], base: Path) -> dict[str, Any]:
    """``values`` with its data folders (``train_dirs``, ``val_dir``) made absolute against ``base``."""
    out = dict(values)
    if "train_dirs" in out:
        out["train_dirs"] = [str((base / d).resolve()) for d in out["train_dirs"]]
    if out.get("val_dir"):
        out["val_dir"] = str((base / out["val_dir"]).resolve())
    return out
