"""Exporting a checkpoint's weights and shipping them as a zoo model, with their record."""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..lr_codecs import codec_class
from ..models import IRN, IRNConfig, count_parameters
from .evaluation import evaluate, load_eval_images


def training_record(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """How a checkpoint was made: config, iterations, wall time, data."""
    config = checkpoint["config"]
    return {
        "config": config,
        "iterations": checkpoint["iteration"],
        "train_seconds": round(checkpoint["elapsed"], 1),
        "data": config["train_dirs"],
        "torch": torch.__version__,
        "threads": config.get("threads") or torch.get_num_threads(),
    }


def load_trained(source: str | os.PathLike, decode_temperature: float | None = None) -> tuple[IRN, dict[str, Any]]:
    """A trained model in float32 and its training record, from a training checkpoint
    (``.pt``) or a weights file (``.safetensors``, e.g. what a campaign returns);
    ``decode_temperature`` sets how the model is meant to be decoded (its config's otherwise)."""
    if Path(source).suffix == ".safetensors":
        from ..zoo import read_weights

        config, weights, record = read_weights(source)
        model = IRN(config)
        model.load_state_dict(weights)
    else:
        state = torch.load(source, map_location="cpu", weights_only=True)
        model = IRN(IRNConfig.from_dict(state["config"]["model"]))
        model.load_state_dict(state["model"])
        record = training_record(state)
    if decode_temperature is not None:
        try:
            config = dataclasses.replace(model.config, decode_temperature=float(decode_temperature))
        except ValueError as err:
            raise ConfigError(str(err)) from None
        state_dict = model.state_dict()
        model = IRN(config)
        model.load_state_dict(state_dict)
    record["parameters"] = count_parameters(model)
    return model, record


def export_checkpoint(checkpoint_path: str | os.PathLike, output: str | os.PathLike,
                      half: bool = True, extra: dict[str, Any] | None = None,
                      decode_temperature: float | None = None, exact_coder: bool = False) -> dict[str, Any]:
    """Save a checkpoint's (or a weights file's) model as safetensors with its training record
    (``exact_coder``: its entropy coder run in integers, see ``zoo.export``)."""
    from ..zoo import export

    model, record = load_trained(checkpoint_path, decode_temperature)
    record.update(extra or {})
    export(model, output, record, half=half, exact_coder=exact_coder)
    return record


#: Qualities at which a released compression-aware model is measured.
RELEASE_QUALITIES = (30, 50, 70, 90)


def release(checkpoint_path: str | os.PathLike, name: str, description: str,
            eval_dir: str | os.PathLike | None = None, decode_temperature: float | None = None,
            exact_coder: bool = False) -> dict[str, Any]:
    """Ship a checkpoint (or float32 weights file) as zoo model ``name``: fp16 weights,
    manifest entry, training record.

    With ``eval_dir``, the record also holds the PSNR measured on it (lossless LR)
    with the fp32 and the shipped fp16 weights, so the cost of fp16 is on record,
    and, for a model trained for a lossy LR codec, the PSNR through that real
    codec at ``RELEASE_QUALITIES``.
    """
    from .. import zoo

    if not zoo.is_valid_model_name(name):
        raise ConfigError(f"model name '{name}' must be 1-64 characters of A-Z a-z 0-9 . _ -")
    if name in zoo.available_models():
        raise ConfigError(f"model '{name}' is already shipped, and files name it: give retrained weights a new name")
    path = zoo.WEIGHTS_DIR / f"{name}.safetensors"
    full, record = load_trained(checkpoint_path, decode_temperature)
    if exact_coder and full.lr_coder is not None:
        full.lr_coder.make_exact()
    zoo.export(copy.deepcopy(full), path, record, half=True, exact_coder=exact_coder)  # a copy: export
    # builds an entropy coder's tables
    if eval_dir is not None:
        half = IRN(full.config)
        half.load_state_dict(zoo.read_weights(path)[1])
        images = load_eval_images(eval_dir, multiple=full.scale)
        record["evaluation"] = {
            "data": str(Path(eval_dir).resolve()), "images": len(images), "lr_codec": "png (lossless)",
            "fp32": evaluate(full, images), "fp16": evaluate(half, images),
            "fp16_mean_z": evaluate(half, images, temperature=0.0),
        }
        codec = full.own_codec or record.get("config", {}).get("lr_proxy")
        if codec and codec_class(codec).per_level_models:
            record["evaluation"][f"fp16_mean_z_{codec}"] = evaluate(half, images, 0.0, lr_codec=codec)
        elif codec:
            t = full.config.decode_temperature  # as the codec decodes it
            key = f"fp16_mean_z_{codec}" if t == 0 else f"fp16_temperature_{t:g}_{codec}"
            record["evaluation"][key] = {
                str(q): evaluate(half, images, t, lr_codec=codec, quality=q) for q in RELEASE_QUALITIES}
    zoo.register(name, description, record)
    return record
