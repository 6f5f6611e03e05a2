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

#: Test files that test a module most closely, where the name test_<module>.py does not say.
_CLOSEST_TESTS = {
    "irncodec.models.irn": ("test_model.py",), "irncodec.models.blocks": ("test_model.py",),
    "irncodec.models.priors": ("test_model.py",),
    "irncodec.models.lr_coder": ("test_lr_coder.py", "test_exact_coder.py"),
    "irncodec.models.fixed_point": ("test_exact_coder.py",),
    "irncodec.lr_codecs.entropy": ("test_lr_coder.py", "test_lr_codecs.py"),
    "irncodec.lr_codecs.step_block": ("test_lr_coder.py",),
}


def pytest_collection_modifyitems(items):
    """Under ``mutmut run`` (which stops at the first failing test), run the mutated
    module's own test files first and the rest fastest first, by mutmut's timings: a
    caught mutant is then caught in seconds. The verdicts do not depend on the order."""
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if "__mutmut_" not in mutant:
        return
    import json

    module = mutant.split(".x", 1)[0]
    closest = _CLOSEST_TESTS.get(module, (f"test_{module.rsplit('.', 1)[-1]}.py",))
    stats = Path("mutmut-stats.json")
    durations = json.loads(stats.read_text()).get("duration_by_test", {}) if stats.is_file() else {}
    items.sort(key=lambda item: (item.path.name not in closest, durations.get(item.nodeid, 0.0)))


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
