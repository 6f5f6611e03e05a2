"""Training IRN on a folder of photos: ``irncodec train CONFIG.yaml``.

Losses follow IRN (Xiao et al. 2020), summed per image and averaged over the
batch as in the reference code:

* guide: L2 between the LR image and a bicubic (antialiased) downscale, so the
  stored LR image is a faithful thumbnail;
* distr: sum of z^2, pushing z towards N(0, I) so the decoder can sample it;
* recon: L1 between the input and its reconstruction from the 8-bit quantised
  LR image (straight-through rounding), passed through the configured LR
  channel (lossless, or a JPEG/WebP: see :mod:`irncodec.channels`), and a
  fresh z from the model's prior;
* sim (SAIN models only): L2 between the network's simulated compressed LR
  and what the channel really delivered, so the inverse path starts from a
  faithful model of the codec;
* rate (``lambda_rate`` > 0): the LR image's bits, per image. With an LR
  entropy coder, the bits its likelihoods give; the coder sits in the channel
  (recon is measured through it), and ``lambda_rate`` sets the rate level,
  as CompressAI's lambda does. Its auxiliary loss (the CDF quantiles) has its
  own optimizer, as in CompressAI's training examples. Through a JPEG
  channel, the calibrated estimate of the JPEG file's size
  (:func:`irncodec.jpeg_proxy.jpeg_bits`) at the quality drawn for the image,
  so the downscaler learns LR images that cost fewer bits;
* thumb (entropy-coder models only): the guide loss again, on the *decoded*
  LR image (weighted by ``lambda_guide``). Without it the coder's synthesis
  drifts into features that only the inverse network can read (measured:
  20 dB from the encoder's LR image after 900 iterations), and the thumbnail
  a user sees with ``decode --lr-only`` is no longer one.

Checkpoints hold the model, optimizer, scheduler, every random generator and
the iteration, so a resumed run continues exactly where it stopped.

Data-parallel training: run the same command under ``torchrun
--nproc_per_node N``. Each process draws its own crops (``batch_size`` is the
global batch, split evenly), gradients are averaged by
``DistributedDataParallel`` (gloo on CPU, NCCL on GPUs), and rank 0 alone
validates, logs and writes checkpoints (holding every rank's RNG state).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from torch import Tensor, nn

from .channels import Channel, make_channel
from .data import RandomCrops, find_images, load_rgb_uint8
from .errors import ConfigError
from .imageio import image_to_tensor, tensor_to_image
from .lr_codecs import get_codec
from .metrics import psnr, quantize_8bit
from .models import IRN, IRNConfig, count_parameters


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
    batch_size: int = 16
    iterations: int = 10000
    lr: float = 2e-4
    weight_decay: float = 1e-5
    lr_milestones: list[float] = field(default_factory=lambda: [0.5, 0.75, 0.9])
    lr_gamma: float = 0.5
    grad_clip: float = 10.0
    lambda_guide: float = 4.0
    lambda_distr: float = 1.0
    lambda_recon: float = 1.0
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
    aux_lr: float = 1.0e-3
    #: Learning rate of the entropy coder's networks (default: ``lr``); a coder
    #: trained from scratch next to a pretrained rescaler wants a larger one.
    coder_lr: float | None = None
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
            raw = resolve_data_paths(raw, Path(path).resolve().parent)
            for key, value in resolve_data_paths(overrides or {}, Path.cwd()).items():
                raw[key] = {**raw.get("model", {}), **value} if key == "model" else value
            raw["model"] = IRNConfig.from_dict(raw.get("model", {}))
            return cls(**raw)
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad training config {path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["model"] = self.model.to_dict()
        return out


def resolve_data_paths(values: dict[str, Any], base: Path) -> dict[str, Any]:
    """``values`` with its data folders (``train_dirs``, ``val_dir``) made absolute against ``base``."""
    out = dict(values)
    if "train_dirs" in out:
        out["train_dirs"] = [str((base / d).resolve()) for d in out["train_dirs"]]
    if out.get("val_dir"):
        out["val_dir"] = str((base / out["val_dir"]).resolve())
    return out


def quantize_ste(x: Tensor) -> Tensor:
    """8-bit rounding in the forward pass, identity gradient in the backward."""
    return x + (quantize_8bit(x) - x).detach()


def bicubic_downscale(x: Tensor, scale: int) -> Tensor:
    return F.interpolate(x, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False)


PRECISIONS = ("fp32", "bf16")


def network_autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context the rescaling network's passes run under."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def irn_losses(model: IRN, hr: Tensor,
               lr_channel: Channel | None = None,
               precision: str = "fp32") -> dict[str, Tensor]:
    """The loss terms for one batch, each per image.

    ``lr_channel`` models what happens to the 8-bit LR image before the decoder
    sees it (e.g. a differentiable JPEG, SAIN-style); None means stored losslessly.
    ``precision`` "bf16" runs the network's two passes under autocast; what
    they return is cast back to fp32, so the channel, coder and losses never
    see bf16.
    """
    n = hr.shape[0]
    with network_autocast(hr.device, precision):
        lr, simulated, z = (t.float() for t in model.rescale(hr))
    received = quantize_ste(lr)
    extra = {}
    if lr_channel is not None:
        received, bits = lr_channel(received)
        if bits is not None:
            extra["rate"] = bits.sum() / n
    bicubic = bicubic_downscale(hr, model.scale)
    if model.lr_coder is not None:
        decoded, likelihoods = model.lr_coder(received)
        received = quantize_ste(decoded.clamp(0, 1))
        extra["rate"] = torch.stack([-torch.log2(v).sum() for v in likelihoods.values()]).sum() / n
        extra["thumb"] = ((received - bicubic) ** 2).sum() / n
    with network_autocast(hr.device, precision):
        upscaled = model.upscale(received).float()
    losses = {
        "guide": ((lr - bicubic) ** 2).sum() / n,
        "distr": model.prior.nll(z),
        "recon": (upscaled - hr).abs().sum() / n,
    }
    if model.config.architecture == "sain":
        losses["sim"] = ((simulated - received.detach()) ** 2).sum() / n
    return {**losses, **extra}


class _LossModule(nn.Module):
    """Model + LR channel -> losses, as one module so DistributedDataParallel can wrap it."""

    def __init__(self, model: IRN, lr_channel: Channel | None,
                 precision: str = "fp32") -> None:
        super().__init__()
        self.model = model
        self.lr_channel = lr_channel
        self.precision = precision

    def forward(self, hr: Tensor) -> dict[str, Tensor]:
        return irn_losses(self.model, hr, self.lr_channel, self.precision)


def distributed_context() -> tuple[int, int]:
    """(rank, world size): (0, 1) unless torch.distributed is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _select_device(name: str, rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device: cuda was asked for, but no GPU is available")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count())
    if name != "cpu":
        raise ConfigError(f"device must be auto, cpu or cuda, got {name!r}")
    return torch.device("cpu")


def load_compatible(model: IRN, trained: IRN) -> None:
    """Copy a trained model's weights into ``model``.

    The architectures must match, except that a plain IRN may seed a SAIN model
    (or a Gaussian prior a mixture one): the E-InvBlock's extra subnet and the
    simulator blocks start as the identity, so the result behaves exactly like
    the trained IRN and fine-tuning starts from it.
    """
    ours, theirs = model.config.to_dict(), trained.config.to_dict()
    extensions = ("architecture", "simulator_blocks", "z_prior", "mixture_components",
                  "lr_coder", "coder_channels", "coder_filter_channels")
    if any(ours[k] != theirs[k] for k in ours if k not in extensions):
        raise ConfigError(f"its architecture {trained.config} differs from the config's")
    seeds_sain = theirs["architecture"] == "irn" or ours == theirs
    seeds_sain = seeds_sain or all(ours[k] == theirs[k] for k in extensions[:4])
    seeds_prior = theirs["z_prior"] == "gaussian" or ours["z_prior"] == theirs["z_prior"]
    seeds_coder = theirs["lr_coder"] == "none" or all(ours[k] == theirs[k] for k in extensions[4:])
    if not (seeds_sain and seeds_prior and seeds_coder and theirs["simulator_blocks"] <= ours["simulator_blocks"]):
        raise ConfigError(f"its architecture {trained.config} cannot seed {model.config}")
    _, unexpected = model.load_state_dict(trained.state_dict(), strict=False)  # missing: the new parts
    if unexpected:
        raise ConfigError(f"weights have parameters the model lacks: {unexpected[:3]}")


class Trainer:
    """One training run: model, optimizer, schedule, data and checkpoints."""

    def __init__(self, config: TrainConfig, run_dir: str | os.PathLike) -> None:
        self.config = config
        self.rank, self.world_size = distributed_context()
        if config.batch_size % self.world_size:
            raise ConfigError(f"batch_size {config.batch_size} must divide evenly over {self.world_size} processes")
        self.device = _select_device(config.device, self.rank)
        self.run_dir = Path(run_dir)
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(config.seed)
        network_autocast(self.device, config.precision)  # checks the option before any work
        self.model = IRN(config.model).to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        aux = {n for n, _ in self._aux_parameters()}
        trained = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad and n not in aux]
        groups: list[dict[str, Any]] = [{"params": [p for n, p in trained if not n.startswith("lr_coder.")]}]
        coder = [p for n, p in trained if n.startswith("lr_coder.")]
        if coder:
            groups.append({"params": coder, "lr": config.coder_lr or config.lr})
        self.optimizer = torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay)
        self.aux_optimizer = (torch.optim.Adam([p for _, p in self._aux_parameters()], lr=config.aux_lr)
                              if aux else None)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, self._milestones(), config.lr_gamma)
        self.data = RandomCrops(config.train_dirs, config.patch_size, seed=config.seed + self.rank)
        torch.manual_seed(config.seed + self.rank)  # each process its own channel qualities
        self.lr_channel = self._lr_channel()
        self.losses: nn.Module = _LossModule(self.model, self.lr_channel, config.precision)
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # The quantiles get gradients from the aux loss only (outside forward): every rank
            # computes the same aux update from the same (averaged) entropy-model weights.
            nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
                self.losses, [f"model.{n}" for n, _ in self._aux_parameters()])
            self.losses = nn.parallel.DistributedDataParallel(self.losses, device_ids=ids)
        self.iteration = 0
        self.elapsed = 0.0
        self._val_images: list[Tensor] | None = None

    def _aux_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """The entropy coder's CDF quantiles, trained by the auxiliary loss alone."""
        return [(n, p) for n, p in self.model.named_parameters() if n.endswith(".quantiles")]

    @property
    def is_main(self) -> bool:
        """Whether this process validates, logs and checkpoints (rank 0)."""
        return self.rank == 0

    def _milestones(self) -> list[int]:
        return [int(m * self.config.iterations) for m in self.config.lr_milestones]

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "last.pt"

    def _rng_state(self) -> tuple[Tensor, Tensor]:
        return torch.get_rng_state(), self.data.generator.get_state()

    def save_checkpoint(self) -> None:
        """Write ``last.pt`` atomically (rank 0; every rank must call it, to gather RNG states)."""
        rng = [self._rng_state()]
        if self.world_size > 1:
            rng = [None] * self.world_size  # type: ignore[list-item]
            dist.all_gather_object(rng, self._rng_state())
        if not self.is_main:
            return
        state = {
            "config": self.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "aux_optimizer": self.aux_optimizer.state_dict() if self.aux_optimizer else None,
            "scheduler": self.scheduler.state_dict(),
            "iteration": self.iteration,
            "elapsed": self.elapsed,
            "torch_rng": rng[0][0],
            "data_rng": rng[0][1],
            "rank_rng": rng,
        }
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_path)

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.aux_optimizer is not None and state.get("aux_optimizer"):
            self.aux_optimizer.load_state_dict(state["aux_optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self._replan_schedule()
        self.iteration = state["iteration"]
        self.elapsed = state["elapsed"]
        ranks = state.get("rank_rng") or [(state["torch_rng"], state["data_rng"])]
        if len(ranks) == self.world_size:
            torch_rng, data_rng = ranks[self.rank]
            torch.set_rng_state(torch_rng)
            self.data.generator.set_state(data_rng)
        elif self.is_main:
            print(f"note: checkpoint was written by {len(ranks)} process(es), this run has "
                  f"{self.world_size}: the run continues, but not bit-exactly")

    def _lr_channel(self) -> Channel | None:
        c = self.config
        if c.model.lr_coder != "none":
            if c.lr_proxy is not None or c.model.architecture == "sain":
                raise ConfigError("a model with an LR entropy coder trains through that coder: "
                                  "leave lr_proxy out and use architecture irn")
            if c.lambda_rate <= 0:
                raise ConfigError("a model with an LR entropy coder needs lambda_rate > 0")
            return None
        if c.lr_proxy is None:
            if c.model.architecture == "sain":
                raise ConfigError("a SAIN model trains through a lossy LR: set lr_proxy to jpeg or webp")
            if c.lambda_rate:
                raise ConfigError("lambda_rate needs an LR codec with a rate: an lr_coder, or lr_proxy jpeg")
            return None
        if c.lambda_rate < 0:
            raise ConfigError("lambda_rate must be >= 0")
        return make_channel(c.lr_proxy, c.lr_quality_range, c.lr_real_codec, rate=c.lambda_rate > 0)

    def init_from(self, weights: str) -> None:
        """Start from trained weights of the same (or a seedable, see load_compatible) architecture."""
        from . import zoo

        trained = zoo.load_model(weights)  # verified like any model the codec loads
        try:
            load_compatible(self.model, trained)
        except ConfigError as exc:
            raise ConfigError(f"init_from {weights}: {exc}") from None

    def _replan_schedule(self) -> None:
        """Make the LR follow this run's length, which may have changed on resume."""
        milestones = self._milestones()
        self.scheduler.milestones = Counter(milestones)
        passed = sum(m <= self.scheduler.last_epoch for m in milestones)
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * self.config.lr_gamma**passed
        self.scheduler._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def step(self) -> dict[str, float]:
        """One optimisation step; returns its losses (averaged over processes)."""
        names, values = self._step()
        return dict(zip(names, self._process_mean(values).tolist()))

    def _process_mean(self, values: Tensor) -> Tensor:
        """The mean over all processes of a tensor every process holds (itself when alone)."""
        if self.world_size > 1:
            values = values.clone()
            dist.all_reduce(values)
            values /= self.world_size
        return values

    def _step(self) -> tuple[list[str], Tensor]:
        """One optimisation step; its loss names and values as one tensor left on the device.

        Nothing here waits for the device, so a GPU's queue stays full; :meth:`run`
        reads the values back once per ``log_every`` steps.
        """
        c = self.config
        self.model.train()
        hr = self.data.batch(c.batch_size // self.world_size).to(self.device)
        if c.channels_last:
            hr = hr.contiguous(memory_format=torch.channels_last)
        losses = self.losses(hr)
        total = c.lambda_guide * losses["guide"] + c.lambda_distr * losses["distr"] + c.lambda_recon * losses["recon"]
        if "sim" in losses:
            total = total + c.lambda_sim * losses["sim"]
        if "rate" in losses:
            total = total + c.lambda_rate * losses["rate"]
        if "thumb" in losses:
            total = total + c.lambda_guide * losses["thumb"]
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.iteration < c.coder_warmup:
            for p in self.optimizer.param_groups[0]["params"]:
                p.grad = None  # Adam leaves parameters without a gradient alone
        if c.grad_clip:
            torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]],
                                           c.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        if self.aux_optimizer is not None and self.model.lr_coder is not None:
            self.aux_optimizer.zero_grad(set_to_none=True)
            losses["aux"] = self.model.lr_coder.aux_loss()
            losses["aux"].backward()
            self.aux_optimizer.step()
        self.iteration += 1
        losses["total"] = total
        return list(losses), torch.stack([v.detach() for v in losses.values()])

    def _past(self, deadline: float) -> bool:
        """Whether ``deadline`` has passed, agreed by every process (they checkpoint together)."""
        if self.world_size == 1:
            return time.monotonic() >= deadline  # no device sync: keep the GPU's queue full
        late = torch.tensor([float(time.monotonic() >= deadline)], device=self.device)
        dist.all_reduce(late, op=dist.ReduceOp.MAX)
        return bool(late.item())

    @property
    def val_codec(self) -> str | None:
        """The real codec validation goes through besides lossless: the one trained for."""
        return "entropy" if self.config.model.lr_coder != "none" else self.config.lr_proxy

    def validate(self) -> dict[str, float]:
        """Reconstruction quality on the first few validation images, cropped for speed:
        with a lossless LR, and through the real codec at ``val_qualities`` when training for one."""
        c = self.config
        if c.val_dir is None:
            return {}
        if self._val_images is None:
            self._val_images = [im.to(self.device) for im in
                                load_eval_images(c.val_dir, c.val_images, c.val_crop, c.model.scale)]
        metrics = evaluate(self.model, self._val_images)
        row = {"val_psnr": metrics["psnr"], "val_lr_psnr": metrics["lr_psnr"]}
        if self.val_codec == "entropy":
            coded = evaluate(self.model, self._val_images, lr_codec="entropy")
            row.update(val_psnr_entropy=coded["psnr"], val_bpp_entropy=coded["bpp"])
        elif self.val_codec:
            for q in c.val_qualities:
                coded = evaluate(self.model, self._val_images, lr_codec=self.val_codec, quality=q)
                row[f"val_psnr_{self.val_codec}{q}"] = coded["psnr"]
                row[f"val_bpp_{self.val_codec}{q}"] = coded["bpp"]
        return row

    def log_fields(self) -> list[str]:
        fields = ["iteration", "elapsed_s", "lr", "total", "guide", "distr", "recon"]
        if self.config.model.architecture == "sain":
            fields.append("sim")
        if self.config.model.lr_coder != "none":
            fields += ["rate", "thumb", "aux"]
        elif self.config.lambda_rate > 0:
            fields.append("rate")
        fields += ["val_psnr", "val_lr_psnr"]
        if self.val_codec == "entropy" and self.config.val_dir:
            fields += ["val_psnr_entropy", "val_bpp_entropy"]
        elif self.val_codec and self.config.val_dir:
            fields += [f"val_{what}_{self.val_codec}{q}" for q in self.config.val_qualities for what in ("psnr", "bpp")]
        return fields

    def set_length(self, iterations: int) -> None:
        """Change the run's length (and with it the LR schedule) mid-run.

        Learning-rate decays already made stay made: a run past a milestone
        grows at most until that milestone still lies behind it.
        """
        passed = [m for m in self.config.lr_milestones if int(m * self.config.iterations) <= self.iteration]
        if passed and self.iteration:
            iterations = min(iterations, int(self.iteration / max(passed)))
        self.config.iterations = max(iterations, self.iteration)
        self._replan_schedule()

    def fit_to_time(self, seconds: float, measure: int = 10, checkpoint_s: float | None = None,
                    progress: bool = False, deadline: float | None = None) -> float:
        """Make the run end in about ``seconds`` of wall time from now: time
        ``measure`` steps, then set the length (so the LR schedule completes
        in time) and, with ``checkpoint_s``, the checkpoint and validation
        intervals. Returns the measured steps per second.

        For time-boxed machines (a lent GPU): a run that knows its length
        decays its learning rate before the machine goes back, rather than
        being cut off at full rate.
        """
        begin = time.monotonic()
        self.run(progress=progress, stop_at=self.iteration + 2, deadline=deadline)  # warm-up
        start, first = time.monotonic(), self.iteration
        self.run(progress=progress, stop_at=self.iteration + measure, deadline=deadline)
        rate = (self.iteration - first) / max(time.monotonic() - start, 1e-9)
        left = seconds - (time.monotonic() - begin)
        self.set_length(self.iteration + int(rate * max(left, 0.0)))
        if checkpoint_s:
            every = max(1, int(rate * checkpoint_s))
            self.config.checkpoint_every = every
            self.config.val_every = every
            self.config.log_every = max(1, min(self.config.log_every, every))
        return rate

    def run(self, progress: bool = True, stop_at: int | None = None, deadline: float | None = None,
            on_checkpoint: Callable[[Trainer], None] | None = None) -> None:
        """Train up to ``stop_at`` (default: the end), checkpointing on the way and at the stop.

        ``deadline`` (a ``time.monotonic()`` value) stops early, with a
        checkpoint, when it passes; ``on_checkpoint`` is called after each
        checkpoint, e.g. to copy the weights somewhere safe.
        """
        from tqdm import tqdm

        c = self.config
        log_file = None
        if self.is_main:
            log_path = self.run_dir / "log.csv"
            new_log = not log_path.exists()
            log_file = open(log_path, "a", newline="")  # noqa: SIM115 (closed in the finally below)
            log = csv.DictWriter(log_file, self.log_fields(), extrasaction="ignore")
            if new_log:
                log.writeheader()
        try:
            bar = tqdm(total=c.iterations, initial=self.iteration, disable=not (progress and self.is_main),
                       desc=c.name)
            sums: Tensor | None = None  # loss sums since the last log row, on the device
            summed = 0
            while self.iteration < (end := c.iterations if stop_at is None else min(stop_at, c.iterations)):
                start = time.perf_counter()
                names, values = self._step()
                self.elapsed += time.perf_counter() - start
                sums = values if sums is None else sums + values
                summed += 1
                bar.update(1)
                row: dict[str, Any] = {}
                if self.iteration % c.log_every == 0 and sums is not None:
                    row = dict(zip(names, self._process_mean(sums / summed).tolist()))
                    sums, summed = None, 0
                    bar.set_postfix(loss=f"{row['total']:.1f}", recon=f"{row['recon']:.1f}")
                if self.is_main and (self.iteration % c.val_every == 0 or self.iteration == c.iterations):
                    row.update(self.validate())
                    if "val_psnr" in row:
                        extra = "".join(f", {k[9:]} {v:.2f} dB" + (f" {row['val_bpp_' + k[9:]]:.3f} bpp"
                                                                    if "val_bpp_" + k[9:] in row else "")
                                        for k, v in row.items() if k.startswith("val_psnr_"))
                        bar.write(f"iter {self.iteration}: val PSNR {row['val_psnr']:.2f} dB{extra}, "
                                  f"LR vs bicubic {row['val_lr_psnr']:.2f} dB")
                if row and log_file is not None:
                    row.update(iteration=self.iteration, elapsed_s=round(self.elapsed, 1),
                               lr=self.scheduler.get_last_lr()[0])
                    log.writerow(row)
                    log_file.flush()
                out_of_time = deadline is not None and self._past(deadline)
                if self.iteration % c.checkpoint_every == 0 or self.iteration == end or out_of_time:
                    self.save_checkpoint()
                    if on_checkpoint is not None and self.is_main:
                        on_checkpoint(self)
                if out_of_time:
                    break
            bar.close()
        finally:
            if log_file is not None:
                log_file.close()


def train(config_path: str | os.PathLike, run_dir: str | os.PathLike | None = None,
          resume: bool = True, iterations: int | None = None, progress: bool = True,
          stop_at: int | None = None) -> Trainer:
    """Train (or resume) the run described by a YAML config.

    ``iterations`` overrides the run's length (and so its LR schedule);
    ``stop_at`` pauses the run at that iteration, to be resumed later.
    """
    config = TrainConfig.from_yaml(config_path)
    if iterations is not None:
        config.iterations = iterations
    trainer = start_run(config, run_dir, resume, progress)
    trainer.run(progress, stop_at)
    return trainer


def start_run(config: TrainConfig, run_dir: str | os.PathLike | None = None, resume: bool = True,
              announce: bool = True) -> Trainer:
    """A Trainer for ``config``, resumed from its checkpoint or started from ``init_from``."""
    if config.threads:
        torch.set_num_threads(config.threads)
    for folder in config.train_dirs + ([config.val_dir] if config.val_dir else []):
        if not Path(folder).is_dir():
            raise ConfigError(f"dataset folder not found: {folder}")
    init_distributed()
    trainer = Trainer(config, run_dir or Path("runs") / config.name)
    if resume and trainer.checkpoint_path.exists():
        trainer.load_checkpoint(trainer.checkpoint_path)
    elif config.init_from:
        trainer.init_from(config.init_from)
    if announce and trainer.is_main:
        print(f"{config.name}: {count_parameters(trainer.model):,} parameters, "
              f"{len(trainer.data)} training images, starting at iteration {trainer.iteration}", flush=True)
    return trainer


def init_distributed() -> None:
    """Join the process group torchrun describes in the environment (no-op otherwise)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)


def load_eval_images(folder: str | os.PathLike, limit: int | None = None,
                     crop: int | None = None, multiple: int = 1) -> list[Tensor]:
    """[1,3,H,W] images from a folder, top-left cropped to ``crop`` and to a multiple of the scale."""
    images = []
    for path in find_images(folder)[:limit]:
        img = load_rgb_uint8(path).float()[None] / 255
        h, w = (min(s, crop or s) // multiple * multiple for s in img.shape[2:])
        images.append(img[:, :, :h, :w])
    return images


def evaluate(model: IRN, images: list[Tensor], temperature: float | None = None,
             lr_codec: str | None = None, quality: int | None = None) -> dict[str, float]:
    """Mean RGB PSNR of HR reconstructions from the 8-bit LR (z drawn with a fixed seed),
    and of the LR image against a bicubic downscale.

    The LR is kept lossless, or goes through a real ``lr_codec`` at ``quality``
    (``bpp`` is added: the LR file's bits per HR pixel); ``entropy`` is the
    model's own coder (real bitstream), run on a copy so training's CDF buffers
    stay untouched.
    """
    was_training = model.training
    model.eval()
    hr_psnr, lr_psnr, bits, pixels = [], [], 0, 0
    generator = torch.Generator(device=images[0].device if images else "cpu").manual_seed(0)
    coder = None
    if lr_codec == "entropy":
        if model.lr_coder is None:
            raise ConfigError("entropy validation needs a model with an LR entropy coder")
        coder = copy.deepcopy(model.lr_coder).eval()
        coder.update(force=True, update_quantiles=True)  # as export does
    with torch.no_grad():
        for hr in images:
            lr = quantize_8bit(model(hr)[0])
            if coder is not None:
                coded = coder.compress(lr)
                received = quantize_8bit(coded.lr_hat)
                bits, pixels = bits + 8 * len(coded.payload), pixels + hr.shape[2] * hr.shape[3]
            elif lr_codec is not None:
                received, size = _through_codec(lr, lr_codec, int(quality or 0))
                bits, pixels = bits + 8 * size, pixels + hr.shape[2] * hr.shape[3]
            else:
                received = lr
            rec = quantize_8bit(model.upscale(received, temperature, generator))
            hr_psnr.append(psnr(rec, hr))
            lr_psnr.append(psnr(lr, bicubic_downscale(hr, model.scale).clamp(0, 1)))
    model.train(was_training)
    out = {"psnr": sum(hr_psnr) / len(hr_psnr), "lr_psnr": sum(lr_psnr) / len(lr_psnr)}
    if lr_codec is not None:
        out["bpp"] = bits / pixels
    return out


def _through_codec(lr: Tensor, codec: str, quality: int) -> tuple[Tensor, int]:
    """One LR image [1, 3, h, w] through a real LR codec: (decoded, file size in bytes)."""
    data, decoded = get_codec(codec).encode_with_reconstruction(tensor_to_image(lr[0]), quality)
    return image_to_tensor(decoded).to(lr.device, lr.dtype), len(data)


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


def export_checkpoint(checkpoint_path: str | os.PathLike, output: str | os.PathLike,
                      half: bool = True, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Save a checkpoint's model as safetensors with its training record."""
    from .zoo import export

    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    model = IRN(IRNConfig.from_dict(state["config"]["model"]))
    model.load_state_dict(state["model"])
    record = training_record(state)
    record["parameters"] = count_parameters(model)
    record.update(extra or {})
    export(model, output, record, half=half)
    return record


#: Qualities at which a released compression-aware model is measured.
RELEASE_QUALITIES = (30, 50, 70, 90)


def release(checkpoint_path: str | os.PathLike, name: str, description: str,
            eval_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Ship a checkpoint as zoo model ``name``: fp16 weights, manifest entry, training record.

    With ``eval_dir``, the record also holds the PSNR measured on it (lossless LR)
    with the fp32 and the shipped fp16 weights, so the cost of fp16 is on record,
    and, for a model trained for a lossy LR codec, the PSNR through that real
    codec at ``RELEASE_QUALITIES``.
    """
    from . import zoo

    if not zoo.is_valid_model_name(name):
        raise ConfigError(f"model name '{name}' must be 1-64 characters of A-Z a-z 0-9 . _ -")
    path = zoo.WEIGHTS_DIR / f"{name}.safetensors"
    record = export_checkpoint(checkpoint_path, path, half=True)
    if eval_dir is not None:
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        full = IRN(IRNConfig.from_dict(state["config"]["model"]))
        full.load_state_dict(state["model"])
        half = IRN(full.config)
        half.load_state_dict(zoo.read_weights(path)[1])
        images = load_eval_images(eval_dir, multiple=full.scale)
        record["evaluation"] = {
            "data": str(Path(eval_dir).resolve()), "images": len(images), "lr_codec": "png (lossless)",
            "fp32": evaluate(full, images), "fp16": evaluate(half, images),
            "fp16_mean_z": evaluate(half, images, temperature=0.0),
        }
        codec = "entropy" if full.lr_coder is not None else state["config"].get("lr_proxy")
        if codec == "entropy":
            record["evaluation"]["fp16_mean_z_entropy"] = evaluate(half, images, 0.0, lr_codec="entropy")
        elif codec:
            record["evaluation"][f"fp16_mean_z_{codec}"] = {
                str(q): evaluate(half, images, 0.0, lr_codec=codec, quality=q) for q in RELEASE_QUALITIES}
    zoo.register(name, description, record)
    return record
