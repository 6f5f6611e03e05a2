"""Shared fixtures: tiny models saved as weights files, small test images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from irncodec import zoo
from irncodec.models import IRN, IRNConfig

#: The image datasets (Kodak, Set14, ...): $IRNCODEC_DATASETS, else shared/datasets beside
#: the repository or a folder above it (mutmut runs the tests from mutants/, one level down).
#: Tests that need them skip, saying so, when they are absent.
DATASETS = Path(os.environ.get("IRNCODEC_DATASETS") or next(
    (p / "shared" / "datasets" for p in Path(__file__).resolve().parents[2:] if (p / "shared" / "datasets").is_dir()),
    Path(__file__).resolve().parents[2] / "shared" / "datasets"))
KODAK = DATASETS / "kodak"


def make_tiny_model(scale: int, seed: int = 0, **options) -> IRN:
    """A small IRN with non-trivial weights (fresh IRNs are plain Haar transforms);
    ``options`` set other IRNConfig fields, e.g. a SAIN architecture."""
    torch.manual_seed(seed)
    model = IRN(IRNConfig(scale=scale, blocks_per_stage=1, growth=4, z_temperature=0.05, **options))
    for p in model.parameters():
        if p.requires_grad:
            p.data.add_(torch.randn_like(p) * 0.02)
    return model.eval()


def _export_tiny(folder, prefix: str, **options) -> dict[int, str]:
    """Tiny x2 and x4 weights files in ``folder``, keyed by scale."""
    paths = {}
    for scale in (2, 4):
        path = folder / f"{prefix}-x{scale}.safetensors"
        zoo.export(make_tiny_model(scale, **options), path, record={"note": "test"})
        paths[scale] = str(path)
    return paths


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """Paths of tiny x2 and x4 weights files, keyed by scale."""
    return _export_tiny(tmp_path_factory.mktemp("weights"), "tiny")


SAIN_OPTIONS = {"architecture": "sain", "simulator_blocks": 1, "z_prior": "mixture", "mixture_components": 3}


@pytest.fixture(scope="session")
def tiny_sain_weights(tmp_path_factory):
    """Paths of tiny SAIN x2 and x4 weights files (E-InvBlock, simulator, mixture prior)."""
    return _export_tiny(tmp_path_factory.mktemp("sain"), "tiny-sain", **SAIN_OPTIONS)


ENTROPY_OPTIONS = {"lr_coder": "hyperprior", "coder_channels": 8, "coder_filter_channels": 4}


@pytest.fixture(scope="session")
def tiny_entropy_weights(tmp_path_factory):
    """Paths of tiny x2 and x4 weights files with a (random) LR entropy coder, CDFs built."""
    return _export_tiny(tmp_path_factory.mktemp("entropy"), "tiny-entropy", **ENTROPY_OPTIONS)


def photo_like(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth image with some texture: compresses like a photo, unlike noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([
        128 + 90 * np.sin(x / 7.0 + c) * np.cos(y / 9.0 - c) for c in range(3)
    ], axis=-1)
    base += rng.normal(0, 6, base.shape)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture
def photo():
    return photo_like(48, 40)


@pytest.fixture
def one_torch_thread():
    """Torch at one thread for the test: tiny tensors, and OpenMP would spin against other busy processes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def model_loads(monkeypatch) -> list[str]:
    """The devices ``zoo.load_model`` is asked for, in order; the models still load, on the CPU."""
    from irncodec import zoo

    devices: list[str] = []
    load = zoo.load_model
    monkeypatch.setattr(zoo, "load_model", lambda ref, device="cpu": devices.append(str(device)) or load(ref, "cpu"))
    return devices
