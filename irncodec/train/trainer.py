"""One training run: model, optimizers, schedule, data, validation and exact checkpoints.

Checkpoints hold the model, optimizer, scheduler, every random generator and
the iteration, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..channels import Channel, make_channel
from ..data import RandomCrops
from ..errors import ConfigError
from ..lr_codecs import codec_class
from ..models import IRN, count_parameters
from .config import TrainConfig
from .distributed import any_process, data_parallel, distributed_context, init_distributed, process_mean, select_device
from .evaluation import evaluate, load_eval_images
from .grow import can_grow, grow
from .losses import LossModule, loss_terms, network_autocast, weighted_total


def load_compatible(model: IRN, trained: IRN) -> None:
    """Copy a trained model's weights into ``model``.

    The architectures must match, except that a plain IRN may seed a SAIN model
    (or a Gaussian prior a mixture one): the E-InvBlock's extra subnet and the
    simulator blocks start as the identity, so the result behaves exactly like
    the trained IRN and fine-tuning starts from it. A model with more blocks per
    stage or a larger growth is seeded by growing the trained one (see
    :mod:`irncodec.train.grow`), which keeps what it computes.
    """
    if can_grow(trained, model):
        larger = dataclasses.replace(trained.config, blocks_per_stage=model.config.blocks_per_stage,
                                     growth=model.config.growth)
        grown = IRN(larger)  # on the trained model's device (the CPU); loading moves it
        grow(trained, grown)
        trained = grown
    ours, theirs = model.config.to_dict(), trained.config.to_dict()
    for settings in (ours, theirs):
        settings.pop("decode_temperature", None)  # how to decode, not architecture
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
        self.device = select_device(config.device, self.rank)
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
            groups.append({"params": coder, "lr": config.coder_learning_rate or config.learning_rate})
        self.optimizer = torch.optim.Adam(groups, lr=config.learning_rate, weight_decay=config.weight_decay)
        self.aux_optimizer = (torch.optim.Adam([p for _, p in self._aux_parameters()], lr=config.aux_learning_rate)
                              if aux else None)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, self._milestones(),
                                                              config.learning_rate_gamma)
        self.data = RandomCrops(config.train_dirs, config.patch_size, seed=config.seed + self.rank,
                                enlarge_range=config.enlarge_range)
        torch.manual_seed(config.seed + self.rank)  # each process its own channel qualities
        self.lr_channel = self._lr_channel()
        if config.recon_temperature < 0:
            raise ConfigError(f"recon_temperature must be >= 0, got {config.recon_temperature}")
        self.losses: nn.Module = LossModule(self.model, self.lr_channel, config.precision, config.recon_temperature)
        if self.world_size > 1:
            self.losses = data_parallel(self.losses, self.device, [p for _, p in self._aux_parameters()])
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
        return [int(m * self.config.iterations) for m in self.config.learning_rate_milestones]

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
                raise ConfigError("lambda_rate needs an LR codec with a rate: an lr_coder, or lr_proxy jpeg or webp")
            return None
        if c.lambda_rate < 0:
            raise ConfigError("lambda_rate must be >= 0")
        return make_channel(c.lr_proxy, c.lr_quality_range, c.lr_real_codec, rate=c.lambda_rate > 0)

    def init_from(self, weights: str) -> None:
        """Start from trained weights of the same (or a seedable, see load_compatible) architecture."""
        from .. import zoo

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
            group["lr"] = group["initial_lr"] * self.config.learning_rate_gamma**passed

    def step(self) -> dict[str, float]:
        """One optimisation step; returns its losses (averaged over processes)."""
        names, values = self._step()
        return dict(zip(names, process_mean(values, self.world_size).tolist()))

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
        total = weighted_total(losses, c)
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
        return any_process(time.monotonic() >= deadline, self.world_size, self.device)

    @property
    def val_codec(self) -> str | None:
        """The real codec validation goes through besides lossless: the one trained for."""
        return self.model.own_codec or self.config.lr_proxy

    def validate(self) -> dict[str, float]:
        """Reconstruction quality on the first few validation images, cropped for speed:
        with a lossless LR, and through the real codec at ``val_qualities`` when training for one.
        z is drawn as decoding draws it (the model's ``decode_temperature``; 0: the prior's mean)."""
        c = self.config
        if c.val_dir is None:
            return {}
        if self._val_images is None:
            self._val_images = [im.to(self.device) for im in
                                load_eval_images(c.val_dir, c.val_images, c.val_crop, c.model.scale)]
        temperature = self.model.config.decode_temperature
        metrics = evaluate(self.model, self._val_images, temperature)
        row = {"val_psnr": metrics["psnr"], "val_lr_psnr": metrics["lr_psnr"]}
        for suffix, quality in self._val_points():
            coded = evaluate(self.model, self._val_images, temperature, lr_codec=self.val_codec, quality=quality)
            row[f"val_psnr_{suffix}"], row[f"val_bpp_{suffix}"] = coded["psnr"], coded["bpp"]
        return row

    def _val_points(self) -> list[tuple[str, int | None]]:
        """(log column suffix, quality) of each validation through the real codec: a codec
        whose levels are models validates at its own level, others at ``val_qualities``."""
        codec = self.val_codec
        if codec is None:
            return []
        if codec_class(codec).per_level_models:
            return [(codec, None)]
        return [(f"{codec}{q}", q) for q in self.config.val_qualities]

    def log_fields(self) -> list[str]:
        """The training log's columns: the step's loss terms, then validation's."""
        fields = ["iteration", "elapsed_s", "learning_rate", "total", *loss_terms(self.config)]
        if self.aux_optimizer is not None:
            fields.append("aux")
        fields += ["val_psnr", "val_lr_psnr"]
        if self.config.val_dir:
            fields += [f"val_{what}_{suffix}" for suffix, _ in self._val_points() for what in ("psnr", "bpp")]
        return fields

    def set_length(self, iterations: int) -> None:
        """Change the run's length (and with it the LR schedule) mid-run.

        Learning-rate decays already made stay made: a run past a milestone
        grows at most until that milestone still lies behind it.
        """
        passed = [m for m in self.config.learning_rate_milestones
                  if int(m * self.config.iterations) <= self.iteration]
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
                    row = dict(zip(names, process_mean(sums / summed, self.world_size).tolist()))
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
                               learning_rate=self.optimizer.param_groups[0]["lr"])
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
