"""Time-boxed training campaigns: several runs at once, on one machine, for a fixed time.

A lent GPU comes for minutes, bare and offline, and gives back only the files
written to one folder. A campaign spends such a lease on several training runs
at once (one GPU is far larger than one IRN needs), each in its own process:

* each run's length is fitted to the time left (``Trainer.fit_to_time``), so
  its learning-rate schedule completes before the machine goes back;
* every ``checkpoint_minutes`` each run writes its weights to the output
  folder (``NAME.safetensors``: float32 where it fits ``max_file_mb``, else
  float16, loadable as ``init_from`` or by ``irncodec.load_model``), so a run
  cut off at the time limit still returns what it learned;
* the logs of every run (``log.csv``, its console output) and a summary go
  into one ``campaign-logs.tar.gz``, rewritten as the runs go;
* an optional probe first times a few steps under variants of the speed
  options, and the runs take the fastest variant made of options listed in
  ``adopt`` (those that do not change the numbers) when it is >= 10 % faster.

Usage (see docs/training.md for the lent-GPU command)::

    python -m irncodec.campaign run campaign/gpu.yaml --out OUT --minutes 8.5
    python -m irncodec.campaign pack ../shared/datasets/train .campaign/data --val ../shared/datasets/kodak

A campaign file names its runs and what they share::

    minutes: 8.5              # wall time for everything, start-up to last file
    checkpoint_minutes: 1.0   # how often each run's weights reach the output folder
    overrides: {threads: 4}   # applied to every run's training config
    probe: {config: ..., steps: 8, variants: [{precision: bf16}], adopt: [channels_last],
            max_s: 60}        # optional; at most max_s (default 15 % of the time, <= 90 s)
    runs:
      - {config: ../configs/campaign_irn_x2.yaml, overrides: {...}}

Relative paths in it are taken from its own folder.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

LOGS_NAME = "campaign-logs.tar.gz"


@dataclass
class Campaign:
    """A campaign file, its paths resolved."""

    runs: list[dict[str, Any]]
    minutes: float = 8.5
    checkpoint_minutes: float = 1.0
    overrides: dict[str, Any] = field(default_factory=dict)
    probe: dict[str, Any] | None = None
    #: Largest output file (MB): weights above it are written as float16.
    max_file_mb: float = 15.0

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> Campaign:
        base = Path(path).resolve().parent
        try:
            with open(path) as f:
                raw = yaml.safe_load(f)
            if not isinstance(raw, dict) or not isinstance(raw.get("runs"), list) or not raw["runs"]:
                raise ValueError("expected a mapping with a non-empty list 'runs'")
            campaign = cls(**raw)
        except (OSError, yaml.YAMLError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad campaign file {path}: {exc}") from None
        from .train import resolve_data_paths

        campaign.overrides = resolve_data_paths(campaign.overrides, base)
        specs = campaign.runs + ([campaign.probe] if campaign.probe else [])
        for spec in specs:
            if not isinstance(spec, dict) or "config" not in spec:
                raise ConfigError(f"bad campaign file {path}: each run needs a 'config'")
            spec["config"] = str((base / spec["config"]).resolve())
            spec["overrides"] = resolve_data_paths(spec.get("overrides") or {}, base)
        return campaign

    def run_config(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The overrides one run trains with: the shared ones, then its own."""
        merged = {**self.overrides, **spec["overrides"]}
        if "model" in self.overrides and "model" in spec["overrides"]:
            merged["model"] = {**self.overrides["model"], **spec["overrides"]["model"]}
        return merged


# ---------------------------------------------------------------- one run (a worker process)

def train_until(config_path: str, overrides: dict[str, Any], run_dir: Path, out_dir: Path,
                deadline: float, checkpoint_s: float, iterations: int | None = None,
                max_file_mb: float = 15.0) -> dict[str, Any]:
    """Train one run until ``deadline`` (a ``time.time()`` value), writing its
    weights to ``out_dir`` at every checkpoint. With ``iterations`` the length
    is fixed (dry runs, tests) instead of fitted to the time left."""
    from .train import TrainConfig, start_run

    config = TrainConfig.from_yaml(config_path, overrides)
    if iterations is not None:
        config.iterations = iterations
    trainer = start_run(config, run_dir, resume=False)
    target = out_dir / f"{config.name}.safetensors"

    stop = time.monotonic() + (deadline - time.time())  # this machine's monotonic clock
    pace = {"time": time.monotonic(), "iteration": trainer.iteration}

    def save(t: Any) -> None:
        export_weights(t, target, max_file_mb)
        if iterations is None and t.iteration < t.config.iterations:  # re-plan from the recent pace
            now = time.monotonic()
            rate = (t.iteration - pace["iteration"]) / max(now - pace["time"], 1e-9)
            t.set_length(t.iteration + int(rate * max(stop - now, 0.0)))
            pace.update(time=now, iteration=t.iteration)

    rate = None
    if iterations is None:
        rate = trainer.fit_to_time(stop - time.monotonic(), checkpoint_s=checkpoint_s, deadline=stop)
        pace.update(time=time.monotonic(), iteration=trainer.iteration)
        print(f"{config.name}: {rate:.2f} it/s, planned {config.iterations} iterations", flush=True)
    trainer.run(progress=False, deadline=stop, on_checkpoint=save)
    if not target.exists():
        save(trainer)
    return {"name": config.name, "iterations": trainer.iteration, "planned": config.iterations,
            "steps_per_s": rate, "train_seconds": round(trainer.elapsed, 1), "weights": target.name}


def export_weights(trainer: Any, path: Path, max_file_mb: float) -> None:
    """The trainer's model as a weights file, float32 if it fits ``max_file_mb``, with its record."""
    import copy

    from . import zoo
    from .models import count_parameters
    from .train import training_record

    model = copy.deepcopy(trainer.model).cpu().float().eval()  # export updates an entropy coder's tables
    half = sum(p.numel() for p in model.parameters()) * 4 > max_file_mb * 1e6
    params = count_parameters(model)
    record = training_record({"config": trainer.config.to_dict(), "iteration": trainer.iteration,
                              "elapsed": trainer.elapsed})
    record.update(parameters=params, device=str(trainer.device), dtype="float16" if half else "float32")
    zoo.export(model, path, record, half=half)


def probe_speed(config_path: str, overrides: dict[str, Any], variants: list[dict[str, Any]],
                steps: int, run_dir: Path) -> list[dict[str, Any]]:
    """Seconds per training step of one config under each variant of its options."""
    import torch

    from .train import TrainConfig, Trainer

    results: list[dict[str, Any]] = []
    for i, variant in enumerate([{}] + list(variants)):
        config = TrainConfig.from_yaml(config_path, {**overrides, **variant})
        if config.threads:
            torch.set_num_threads(config.threads)
        trainer = Trainer(config, run_dir / f"probe{i}")
        for _ in range(2):
            trainer.step()
        _sync(trainer.device)
        start = time.perf_counter()
        for _ in range(steps):
            trainer.step()
        _sync(trainer.device)
        results.append({"variant": variant or "baseline", "s_per_step": (time.perf_counter() - start) / steps})
        print(f"probe {config.name} {variant or 'baseline'}: {results[-1]['s_per_step'] * 1000:.0f} ms/step",
              flush=True)
        del trainer
    return results


def adopt_from_probe(results: list[dict[str, Any]] | None, allowed: list[str],
                     min_gain: float = 1.1) -> dict[str, Any]:
    """The fastest probed variant made only of ``allowed`` options, if it beats the
    baseline by ``min_gain``; else nothing. Options that change the numbers
    (bf16) are left out of ``allowed`` until a run has shown they train as well."""
    if not results or results[0].get("variant") != "baseline":
        return {}
    base = results[0]["s_per_step"]
    fitting = [r for r in results[1:] if isinstance(r["variant"], dict) and set(r["variant"]) <= set(allowed)]
    best = min(fitting, key=lambda r: r["s_per_step"], default=None)
    return dict(best["variant"]) if best and base / best["s_per_step"] >= min_gain else {}


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------- the campaign (parent process)

def run_campaign(campaign_path: str | os.PathLike, out_dir: str | os.PathLike,
                 work_dir: str | os.PathLike = "runs/campaign", minutes: float | None = None,
                 iterations: int | None = None, poll_s: float = 10.0,
                 parallel: int | None = None, continue_from: str | os.PathLike | None = None) -> dict[str, Any]:
    """Run every run of a campaign at once, each in its own process; returns the summary.

    Ends by ``minutes`` (default: the file's) after it starts, whatever happens:
    runs past the deadline are stopped (their last weights are already out).
    ``parallel`` caps how many run at a time (a machine with less memory than
    the campaign was made for); the others start as earlier ones end.
    ``continue_from`` is a folder of weights an earlier call returned: a run
    whose weights file (``NAME.safetensors``) is there starts from it.
    """
    campaign = Campaign.from_yaml(campaign_path)
    budget_s = 60.0 * (campaign.minutes if minutes is None else minutes)
    begin = time.time()
    out, work = Path(out_dir), Path(work_dir)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"campaign": str(campaign_path), "budget_s": budget_s, "runs": {}}
    try:
        import torch

        gpus = torch.cuda.device_count()
        summary["device"] = torch.cuda.get_device_name(0) if gpus else "cpu"
        summary["torch"] = torch.__version__
    except Exception as exc:
        gpus, summary["device"] = 0, f"unknown ({exc})"

    if campaign.probe and iterations is None:
        spec = campaign.probe
        job = _spawn("probe", {"config": spec["config"], "overrides": campaign.run_config(spec),
                               "variants": spec.get("variants", []), "steps": spec.get("steps", 8),
                               "run_dir": str(work / "probe")}, work / "probe", None)
        _wait([job], begin + spec.get("max_s", min(budget_s * 0.15, 90)), out, work, summary, poll_s)
        summary["probe"] = _read_json(work / "probe" / "result.json")
        adopted = adopt_from_probe(summary["probe"], spec.get("adopt", []))
        if adopted:
            campaign.overrides.update(adopted)
            summary["adopted"] = adopted

    # Leave time at the end for the slowest checkpoint and the last log archive.
    deadline = begin + budget_s - min(30.0, 0.1 * budget_s)
    jobs: list[subprocess.Popen] = []
    width = len(campaign.runs) if parallel is None else max(1, parallel)
    for i, spec in enumerate(campaign.runs):
        while sum(j.poll() is None for j in jobs) >= width and time.time() < deadline:
            time.sleep(min(poll_s, 1.0))
        run_dir = work / f"run{i}"
        overrides = campaign.run_config(spec)
        if continue_from is not None:
            name = _run_name(spec["config"], overrides)
            earlier = Path(continue_from) / f"{name}.safetensors"
            if earlier.is_file():
                overrides["init_from"] = str(earlier.resolve())
                summary.setdefault("continued", {})[name] = str(earlier)
        args = {"config": spec["config"], "overrides": overrides, "run_dir": str(run_dir),
                "out_dir": str(out.resolve()), "deadline": deadline,
                "checkpoint_s": 60.0 * campaign.checkpoint_minutes, "iterations": iterations,
                "max_file_mb": campaign.max_file_mb}
        jobs.append(_spawn("train", args, run_dir, i % gpus if gpus > 1 else None))
    _wait(jobs, deadline + min(20.0, max(5.0, 0.05 * budget_s)), out, work, summary, poll_s)
    for i, job in enumerate(jobs):
        result = _read_json(work / f"run{i}" / "result.json") or {}
        result["exit_code"] = job.returncode
        key = Path(campaign.runs[i]["config"]).stem
        summary["runs"][key if key not in summary["runs"] else f"{key}#{i}"] = result
    summary["wall_s"] = round(time.time() - begin, 1)
    for partial in out.glob("*.tmp"):  # a write cut off by the deadline
        partial.unlink()
    _write_logs(out, work, summary)
    return summary


def _run_name(config_path: str, overrides: dict[str, Any]) -> str:
    """The name a run's weights file takes (its config's, unless overridden)."""
    from .train import TrainConfig

    return TrainConfig.from_yaml(config_path, overrides).name


def _spawn(kind: str, args: dict[str, Any], run_dir: Path, gpu: int | None) -> subprocess.Popen:
    # A campaign's runs start fresh (weights from init_from or continue_from, never a
    # checkpoint): an earlier campaign's log, checkpoint or result in the same work
    # folder would otherwise be appended to or reported as this one's.
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / "args.json").write_text(json.dumps(args, indent=1))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    log = open(run_dir / "console.log", "w")  # noqa: SIM115 (the child process writes it; closed by the OS)
    cmd = [sys.executable, "-m", "irncodec.campaign", "_worker", kind, str(run_dir / "args.json")]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _wait(jobs: list[subprocess.Popen], until: float, out: Path, work: Path,
          summary: dict[str, Any], poll_s: float) -> None:
    """Wait for the jobs, archiving logs as they go; stop those still running at ``until``."""
    while any(j.poll() is None for j in jobs) and time.time() < until:
        time.sleep(min(poll_s, max(0.1, until - time.time())))
        _write_logs(out, work, summary)
    for job in jobs:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGTERM)
    for job in jobs:
        try:
            job.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_logs(out: Path, work: Path, summary: dict[str, Any]) -> None:
    """Every run's log.csv and console output, and the summary, as one archive (atomically)."""
    tmp = out / (LOGS_NAME + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for path in sorted(work.rglob("*")):
            if path.is_file() and (path.name in ("log.csv", "console.log", "result.json", "args.json")):
                tar.add(path, arcname=str(path.relative_to(work)))
        data = json.dumps(summary, indent=1).encode()
        info = tarfile.TarInfo("summary.json")
        info.size, info.mtime = len(data), int(time.time())
        tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, out / LOGS_NAME)


def _worker(kind: str, args_path: str) -> None:
    args = json.loads(Path(args_path).read_text())
    run_dir = Path(args.pop("run_dir"))
    if kind == "probe":
        result: Any = probe_speed(args["config"], args["overrides"], args["variants"], args["steps"], run_dir)
    else:
        result = train_until(args["config"], args["overrides"], run_dir, Path(args["out_dir"]),
                             args["deadline"], args["checkpoint_s"], args["iterations"], args["max_file_mb"])
    (run_dir / "result.json").write_text(json.dumps(result, indent=1))


# ---------------------------------------------------------------- the training-data pack

def build_data_pack(sources: list[str | os.PathLike], dest: str | os.PathLike, budget_mb: float = 40.0,
                    val_dir: str | os.PathLike | None = None, val_images: int = 4,
                    val_crop: int = 256, lossless_floor: int = 256) -> dict[str, Any]:
    """A training set small enough to travel with the working tree.

    With ``val_dir``, its first ``val_images`` images, top-left cropped to
    ``val_crop`` (what training validates on), go to ``val/`` as PNG.
    Lossless photos (PNG...) are the cleanest HR data, so each keeps room for a
    lossless WebP centre crop of ``lossless_floor`` px a side. Compressed photos
    (JPEG) are copied byte for byte into what is left; when they do not all fit,
    an evenly spaced subset does (the manifest's ``left_out``). The lossless
    crops then share the rest of ``budget_mb`` evenly, as large as it allows.
    Returns the pack's manifest.
    """
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "train").mkdir(parents=True)
    try:
        return _fill_pack([Path(src) for src in sources], dest, budget_mb, val_dir, val_images, val_crop,
                          lossless_floor)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # no half-built pack left behind
        raise


def _fill_pack(sources: list[Path], dest: Path, budget_mb: float, val_dir: str | os.PathLike | None,
               val_images: int, val_crop: int, lossless_floor: int) -> dict[str, Any]:
    import hashlib

    from .data import find_images
    from .imageio import load_image

    train_dir = dest / "train"
    budget = budget_mb * 1e6
    files = [p for src in sources for p in find_images(src)]
    compressed = [p for p in files if p.suffix.lower() in (".jpg", ".jpeg")]
    lossless = [p for p in files if p not in compressed]
    manifest: dict[str, Any] = {"budget_mb": budget_mb, "files": {}, "left_out": []}

    def add(path: Path, source: Path, note: str) -> None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest["files"][str(path.relative_to(dest))] = {"source": source.name, "sha256": digest, "how": note}

    used = 0
    if val_dir is not None:
        (dest / "val").mkdir()
        for path in find_images(val_dir)[:val_images]:
            img = load_image(path, frame=0).convert("RGB")
            target = dest / "val" / f"{path.stem}.png"
            img.crop((0, 0, min(img.width, val_crop), min(img.height, val_crop))).save(target)
            used += target.stat().st_size
            add(target, path, f"top-left crop, at most {val_crop}x{val_crop}")
    if used > budget:
        raise ConfigError(f"the validation crops take {used / 1e6:.1f} MB, over the {budget_mb} MB budget")

    def rgb(path: Path) -> Any:
        return load_image(path, frame=0).convert("RGB")

    floors = [len(_centre_crop_webp(rgb(path), lossless_floor)) for path in lossless]
    kept = _evenly_spaced_within(compressed, budget - used - sum(floors))
    for i, path in enumerate(compressed):
        if path not in kept:
            manifest["left_out"].append(path.name)
            continue
        target = train_dir / f"c{i:04d}-{path.name}"
        shutil.copyfile(path, target)
        used += target.stat().st_size
        add(target, path, "copied")
    for i, path in enumerate(lossless):
        # its floor crop, and an even part of what the floors leave
        share = floors[i] + (budget - used - sum(floors[i:])) / (len(lossless) - i)
        img = rgb(path)
        side, lower = min(img.size), min(lossless_floor, *img.size)
        for _ in range(8):
            data = _centre_crop_webp(img, side)
            if len(data) <= share or side <= 96:
                break
            if side <= lower:  # not even the floor fits (the budget is that tight): shrink on
                lower = 96
            side = max(lower, min(side - 1, int(side * (share / len(data)) ** 0.5 * 0.97)))
        if len(data) > share:
            manifest["left_out"].append(path.name)  # not even a small crop fits
            continue
        target = train_dir / f"l{i:04d}-{path.stem}.webp"
        target.write_bytes(data)
        used += len(data)
        add(target, path, f"lossless webp centre crop {side}x{side}")
    if not any(train_dir.iterdir()):
        raise ConfigError(f"no training photo fits in the {budget_mb} MB budget")
    manifest["bytes"] = sum((dest / f).stat().st_size for f in manifest["files"])
    (dest / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _centre_crop_webp(img: Any, side: int) -> bytes:
    """The centre square of ``img``, at most ``side`` px a side, as lossless WebP."""
    side = min(side, *img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    data = io.BytesIO()
    img.crop((left, top, left + side, top + side)).save(data, "WEBP", lossless=True, quality=80, method=4)
    return data.getvalue()


def _evenly_spaced_within(paths: list[Path], room: float) -> set[Path]:
    """The most files, evenly spaced through ``paths``, whose sizes sum to at most ``room``."""
    sizes = [p.stat().st_size for p in paths]
    for count in range(len(paths), 0, -1):
        chosen = [i * len(paths) // count for i in range(count)]
        if sum(sizes[i] for i in chosen) <= room:
            return {paths[i] for i in chosen}
    return set()


def main(argv: list[str] | None = None) -> None:
    import click

    @click.group()
    def cli() -> None:
        """Time-boxed training campaigns (see irncodec/campaign.py)."""

    @cli.command()
    @click.argument("campaign_file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
                  help="Folder for the weights and the log archive.")
    @click.option("--work-dir", default="runs/campaign", show_default=True, type=click.Path(file_okay=False),
                  help="Checkpoints and logs of the runs.")
    @click.option("--minutes", type=float, default=None, help="Wall time for everything [default: the file's].")
    @click.option("--iterations", type=int, default=None,
                  help="Fixed length for every run instead of fitting it to the time (dry runs).")
    @click.option("--parallel", type=click.IntRange(min=1), default=None,
                  help="Runs at a time [default: all]; fewer where memory is short.")
    @click.option("--continue-from", type=click.Path(exists=True, file_okay=False), default=None,
                  help="Folder of weights an earlier call returned: each run whose NAME.safetensors "
                       "is there starts from it.")
    def run(campaign_file: str, out_dir: str, work_dir: str, minutes: float | None,
            iterations: int | None, parallel: int | None, continue_from: str | None) -> None:
        """Run CAMPAIGN_FILE's runs at once until its time is up."""
        summary = run_campaign(campaign_file, out_dir, work_dir, minutes, iterations, parallel=parallel,
                               continue_from=continue_from)
        click.echo(json.dumps(summary, indent=1))
        failed = [name for name, r in summary["runs"].items() if r.get("exit_code") not in (0, -15)]
        if failed or not summary["runs"]:
            raise click.ClickException(f"runs failed: {', '.join(failed)} (see {LOGS_NAME})")

    @cli.command()
    @click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
    @click.argument("dest", type=click.Path(file_okay=False))
    @click.option("--budget-mb", type=float, default=40.0, show_default=True)
    @click.option("--val", "val_dir", type=click.Path(exists=True, file_okay=False), default=None,
                  help="Validation images: the first four, top-left 256 px crops, go to DEST/val.")
    def pack(sources: tuple[str, ...], dest: str, budget_mb: float, val_dir: str | None) -> None:
        """Build a training-data pack in DEST from SOURCES folders, within --budget-mb."""
        manifest = build_data_pack(list(sources), dest, budget_mb, val_dir)
        left_out = f"; {len(manifest['left_out'])} photos left out" if manifest["left_out"] else ""
        click.echo(f"{len(manifest['files'])} files, {manifest['bytes'] / 1e6:.1f} MB in {dest}{left_out}")

    @cli.command("_worker", hidden=True)
    @click.argument("kind", type=click.Choice(["train", "probe"]))
    @click.argument("args_path")
    def worker(kind: str, args_path: str) -> None:
        _worker(kind, args_path)

    cli.main(args=argv, prog_name="python -m irncodec.campaign")


if __name__ == "__main__":
    main()
