"""Data-parallel training: run the same command under ``torchrun --nproc_per_node N``.

Each process draws its own crops (``batch_size`` is the global batch, split
evenly), gradients are averaged by ``DistributedDataParallel`` (gloo on CPU,
NCCL on GPUs), and rank 0 alone validates, logs and writes checkpoints
(holding every rank's RNG state).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..errors import ConfigError


def distributed_context() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless torch.distributed is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def select_device(name: str, rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device: cuda was asked for, but no GPU is available")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
    if name != "cpu":
        raise ConfigError(f"device must be auto, cpu or cuda, got {name!r}")
    return torch.device("cpu")


def init_distributed() -> None:
    """Join the process group torchrun describes in the environment (no-op otherwise)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)


def process_mean(values: Tensor, world_size: int) -> Tensor:
    """The mean over all processes of a tensor every process holds (itself when alone)."""
    if world_size > 1:
        values = values.clone()
        dist.all_reduce(values)
        values /= world_size
    return values


def any_process(flag: bool, world_size: int, device: torch.device) -> bool:
    """Whether ``flag`` holds in any process (every process must call it)."""
    if world_size == 1:
        return flag
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def data_parallel(module: nn.Module, device: torch.device, outside_forward: list[nn.Parameter]) -> nn.Module:
    """``module`` wrapped in DistributedDataParallel, leaving out ``outside_forward``:
    parameters trained by a loss computed outside ``forward`` (the entropy coder's
    quantiles, by its auxiliary loss), which DDP would wait for in vain.

    DDP takes the parameters that require gradients when it is built, so those
    are frozen for the moment of wrapping. Every process computes the same
    update for them from the same (averaged) weights.
    """
    for p in outside_forward:
        p.requires_grad_(False)
    try:
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)
    finally:
        for p in outside_forward:
            p.requires_grad_(True)
