#!/usr/bin/env python
"""Encode/decode speed and peak memory of irncodec against Pillow JPEG, WebP and AVIF.

    python benchmarks/speed.py --limit 4 --repeat 5 --threads 2

Each (method, device, image, phase) runs in a fresh Python process, so its
peak resident memory (VmHWM) belongs to that measurement alone:
tracemalloc cannot see torch's allocations. The process first loads the
image (and the model), records its resident memory as the baseline, runs
the operation once untimed (warm-up: lazy initialisation, caches), then
``--repeat`` timed runs; the median is reported. ``peak MB`` is the process's
high-water mark, ``+MB`` the part above the baseline. Pillow workers never
import torch. CUDA rows are added when ``torch.cuda.is_available()``.
Writes ``speed.json`` and ``speed.md`` to ``--out``.
"""

from __future__ import annotations

import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

if not __package__:  # run as a script: the repository root, where the benchmarks package is, goes on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DEFAULT_DATASET, DEFAULT_OUT, list_images, resolve_models, scales_option
from benchmarks.rd.settings import PILLOW_BASELINES

#: Pillow baselines timed: method -> (Pillow format, save options, Pillow feature needed), as the RD harness runs them.
PILLOW_METHODS: dict[str, tuple[str, dict[str, Any], str | None]] = {
    name: PILLOW_BASELINES[name] for name in ("jpeg-420", "webp", "avif")}


# --- memory --------------------------------------------------------------------

def current_rss_mb() -> float:
    """Resident memory of this process now, in MiB (Linux /proc, else psutil)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import psutil

        return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    """High-water resident memory of this process, in MiB.

    Linux's VmHWM belongs to the process image, so it starts afresh at exec;
    ``ru_maxrss`` would carry over the parent's peak (it survives execve), so
    it is only the fallback elsewhere (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


# --- one measurement (runs inside the worker process) ----------------------------

def _load_rgb(path: str):
    from PIL import Image

    with Image.open(path) as img:
        rgb = img.convert("RGB")
    rgb.info.clear()  # pixels only, no metadata in the encoded files
    return rgb


def _pillow_ops(job: dict[str, Any]) -> Callable[[], bytes | None]:
    """The timed operation for a Pillow method and phase."""
    from PIL import Image

    fmt, options, _ = PILLOW_METHODS[job["method"]]
    if job["phase"] == "encode":
        img = _load_rgb(job["image"])

        def encode() -> bytes:
            buffer = io.BytesIO()
            img.save(buffer, fmt, quality=job["quality"], **options)
            return buffer.getvalue()
        return encode
    data = Path(job["payload"]).read_bytes()

    def decode() -> None:
        with Image.open(io.BytesIO(data)) as opened:
            opened.convert("RGB")
    return decode


def _irncodec_ops(job: dict[str, Any]) -> Callable[[], bytes | None]:
    """The timed operation for irncodec; the model is loaded before the baseline is taken."""
    import torch

    import irncodec
    from irncodec import zoo

    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    device = job["device"]
    zoo.load_model(job["model"], device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    if job["phase"] == "encode":
        img = _load_rgb(job["image"])

        def encode() -> bytes:
            data = irncodec.encode(img, quality=job.get("lr_quality", job["quality"]), codec=job.get("codec", "jpeg"),
                                   model=job["model"], device=device)
            sync()
            return data
        return encode
    data = Path(job["payload"]).read_bytes()

    def decode() -> None:
        irncodec.decode(data, model=job["model"], device=device)
        sync()
    return decode


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Time one method/phase on one image in this process: median seconds and memory.

    An encode job writes its output to ``job['payload']`` for the decode job.
    """
    is_irn = job["method"].startswith("irncodec")
    operation = _irncodec_ops(job) if is_irn else _pillow_ops(job)
    cuda = is_irn and job["device"].startswith("cuda")
    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats()
    base = current_rss_mb()
    result = operation()  # warm-up, untimed
    if job["phase"] == "encode":
        Path(job["payload"]).write_bytes(result)
    times = []
    for _ in range(job["repeat"]):
        start = time.perf_counter()
        operation()
        times.append(time.perf_counter() - start)
    record = {"seconds": statistics.median(times), "times": times, "base_mb": base, "peak_mb": peak_rss_mb()}
    if cuda:
        record["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if job["phase"] == "encode":
        record["bytes"] = len(result)
    return record


def measure_in_subprocess(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job in a fresh interpreter, so its peak RSS is its own."""
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(job)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise click.ClickException(f"{job['method']} {job['phase']} on {Path(job['image']).name} failed:\n"
                                   f"{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- a new process per run: what a user of the command line waits for ------------

#: A new Python process that encodes with Pillow's AVIF, the cold start's reference.
_AVIF_PROCESS = ("import sys\nfrom PIL import Image\n"
                 "Image.open(sys.argv[1]).convert('RGB').save(sys.argv[2], 'AVIF', quality=int(sys.argv[3]))\n")


def cold_commands(image: Path, folder: Path, quality: int, model: str | None, codec: str, level: int | None,
                  threads: int | None) -> dict[str, list[str]]:
    """The commands timed from a new process each: irncodec's encode, info and --help, and Pillow AVIF."""
    irncodec = [sys.executable, "-m", "irncodec"]
    encode = [*irncodec, "encode", str(image), str(folder / "cold.irn"), "-f", "-c", codec,
              "-q", str(level if level is not None else quality)]
    encode += ["-m", model] if model else []
    encode += ["--threads", str(threads)] if threads else []
    return {"irncodec encode": encode, "irncodec info": [*irncodec, "info", str(folder / "cold.irn")],
            "irncodec --help": [*irncodec, "--help"],
            "python + Pillow AVIF": [sys.executable, "-c", _AVIF_PROCESS, str(image), str(folder / "cold.avif"),
                                     str(quality)]}


def time_commands(commands: dict[str, list[str]], repeat: int) -> list[dict[str, Any]]:
    """Median wall time of each command, each run a new process (the first run untimed: disk cache)."""
    rows = []
    for name, command in commands.items():
        times = []
        for attempt in range(repeat + 1):
            start = time.perf_counter()
            proc = subprocess.run(command, capture_output=True, text=True)
            elapsed = time.perf_counter() - start
            if proc.returncode != 0:
                raise click.ClickException(f"{name} failed:\n{proc.stderr.strip()[-2000:]}")
            if attempt:
                times.append(elapsed)
        rows.append({"command": name, "seconds": statistics.median(times), "times": times})
    return rows


def cold_markdown(rows: Sequence[dict[str, Any]], image: str) -> str:
    """The cold-start table, each command also as a multiple of the Pillow AVIF process."""
    reference = next((r["seconds"] for r in rows if r["command"] == "python + Pillow AVIF"), None)
    lines = [f"A new process per run, {image} (median wall time):", "",
             "| command | s | x Pillow AVIF process |", "| --- | ---: | ---: |"]
    for r in rows:
        ratio = f"{r['seconds'] / reference:.1f}" if reference else ""
        lines.append(f"| {r['command']} | {r['seconds']:.2f} | {ratio} |")
    return "\n".join(lines) + "\n"


def avif_multiples(means: Sequence[dict[str, Any]]) -> str:
    """Each irncodec method's encode + decode time (in this process) as a multiple of Pillow AVIF's."""
    avif = next((m for m in means if m["method"] == "avif" and m["device"] == "cpu"), None)
    if avif is None:
        return ""
    reference = avif["encode_s"] + avif["decode_s"]
    lines = [f"Encode + decode, mean over images, as a multiple of Pillow AVIF's ({reference * 1e3:.0f} ms):", ""]
    for m in means:
        if m["method"].startswith("irncodec"):
            total = m["encode_s"] + m["decode_s"]
            lines.append(f"- {m['method']} ({m['device']}): {total * 1e3:.0f} ms, {total / reference:.1f}x")
    return "\n".join(lines) + "\n"


# --- what to measure -----------------------------------------------------------

def pillow_methods(notes: list[str]) -> list[str]:
    """The Pillow baselines this Pillow can encode; the others become notes."""
    from PIL import features

    methods = []
    for method, (_, _, feature) in PILLOW_METHODS.items():
        if feature is None or features.check(feature):
            methods.append(method)
        else:
            notes.append(f"{method} skipped: this Pillow lacks {feature} support")
    return methods


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _per_level(codec: str) -> bool:
    from irncodec.lr_codecs import codec_class

    return codec_class(codec).per_level_models


def _lossy_codec(name: str) -> str:
    from irncodec.lr_codecs import available_codecs, codec_class

    lossy = [c for c in available_codecs() if not codec_class(c).lossless]
    if name not in lossy:
        raise click.BadParameter(f"'{name}' is not a lossy LR codec: choose from {', '.join(lossy)}")
    return name


def plan(images: Sequence[Path], models: dict[float, str], pillow: Sequence[str], quality: int,
         repeat: int, threads: int | None, devices: Sequence[str], codec: str = "jpeg",
         level: int = 2) -> list[dict[str, Any]]:
    """One job description per method, device and image (the phase is filled in later).

    irncodec stores its LR image with ``codec`` at ``quality``, or, for a
    codec whose levels are models (entropy), at ``level``."""
    jobs = []
    suffix, lr_quality = (f"-{codec}", level) if _per_level(codec) else ("", quality)
    for image in images:
        for device in devices:
            for scale, model in models.items():
                jobs.append({"method": f"irncodec-x{scale:g}{suffix}", "model": model, "device": device,
                             "image": str(image), "quality": quality, "codec": codec, "lr_quality": lr_quality,
                             "repeat": repeat, "threads": threads})
        for method in pillow:
            jobs.append({"method": method, "device": "cpu", "image": str(image), "quality": quality,
                         "repeat": repeat, "threads": threads})
    return jobs


def measure(job: dict[str, Any], folder: Path, runner: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """Encode then decode one job's image; a row with times, throughput and memory."""
    from PIL import Image

    with Image.open(job["image"]) as img:
        width, height = img.size
    payload = folder / f"{Path(job['image']).stem}.{job['method']}.{job['device'].replace(':', '')}.bin"
    enc = runner({**job, "phase": "encode", "payload": str(payload)})
    dec = runner({**job, "phase": "decode", "payload": str(payload)})
    megapixels = width * height / 1e6
    row = {
        "method": job["method"], "device": job["device"], "image": Path(job["image"]).stem,
        "width": width, "height": height, "bytes": enc["bytes"], "bpp": enc["bytes"] * 8 / (width * height),
        "encode_s": enc["seconds"], "decode_s": dec["seconds"],
        "encode_mps": megapixels / enc["seconds"], "decode_mps": megapixels / dec["seconds"],
        "encode_peak_mb": enc["peak_mb"], "decode_peak_mb": dec["peak_mb"],
        "encode_extra_mb": enc["peak_mb"] - enc["base_mb"], "decode_extra_mb": dec["peak_mb"] - dec["base_mb"],
    }
    for phase, record in (("encode", enc), ("decode", dec)):
        if "gpu_peak_mb" in record:
            row[f"{phase}_gpu_peak_mb"] = record["gpu_peak_mb"]
    return row


def mean_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method and device, the mean of every numeric column over images."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["device"]), []).append(row)
    means = []
    for (method, device), members in groups.items():
        mean = {"method": method, "device": device, "image": "mean"}
        for key, value in members[0].items():
            if isinstance(value, (int, float)) and key not in mean:
                mean[key] = statistics.fmean(m[key] for m in members)
        means.append(mean)
    return means


def speed_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The table: per image and mean rows, times in ms, memory in MiB."""
    names = ["method", "device", "image", "bpp", "enc ms", "dec ms", "enc MP/s", "dec MP/s",
             "enc peak MB (+MB)", "dec peak MB (+MB)", "GPU enc/dec MB"]
    lines = ["| " + " | ".join(names) + " |", "|" + " --- |" * len(names)]
    for r in rows:
        gpu = (f"{r['encode_gpu_peak_mb']:.0f}/{r['decode_gpu_peak_mb']:.0f}"
               if "encode_gpu_peak_mb" in r else "")
        lines.append(
            f"| {r['method']} | {r['device']} | {r['image']} | {r['bpp']:.3f} | {r['encode_s'] * 1e3:.1f} | "
            f"{r['decode_s'] * 1e3:.1f} | {r['encode_mps']:.2f} | {r['decode_mps']:.2f} | "
            f"{r['encode_peak_mb']:.0f} (+{r['encode_extra_mb']:.0f}) | "
            f"{r['decode_peak_mb']:.0f} (+{r['decode_extra_mb']:.0f}) | {gpu} |")
    return "\n".join(lines) + "\n"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dataset", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_DATASET,
              show_default="../shared/datasets/kodak", help="Folder of test images.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N images.")
@click.option("--repeat", type=click.IntRange(min=1), default=5, show_default=True,
              help="Timed runs per measurement (median reported).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch.set_num_threads for irncodec.")
@click.option("--quality", type=click.IntRange(1, 100), default=75, show_default=True,
              help="Quality of every codec (irncodec's JPEG LR image included).")
@click.option("--scale", "scale_texts", multiple=True,
              help="irncodec scales from 1.1 to 4 (e.g. 2 or 1.5,2,4); default: 2 and 4.")
@click.option("--model", default=None, help="Zoo name or .safetensors path instead of the shipped models.")
@click.option("--codec", default="jpeg", show_default=True,
              help="irncodec's LR codec (a lossy one: jpeg, webp, entropy, ...).")
@click.option("--level", type=click.IntRange(1, 8), default=2, show_default=True,
              help="With a codec whose levels are models (entropy): the level (its model) irncodec uses.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_OUT,
              show_default="benchmarks/results", help="Output folder.")
@click.option("--cold/--no-cold", default=True, show_default=True,
              help="Also time new processes: irncodec encode/info/--help of the first image against a "
                   "Python process that encodes it with Pillow's AVIF.")
@click.option("--worker", default=None, hidden=True, help="Internal: run one JSON job and print its result.")
def main(dataset: Path, limit: int | None, repeat: int, threads: int | None, quality: int,
         scale_texts: tuple[str, ...], model: str | None, codec: str, level: int, out: Path, cold: bool,
         worker: str | None) -> None:
    """Time encoding and decoding, and measure peak memory, per image and codec."""
    if worker is not None:
        click.echo(json.dumps(run_job(json.loads(worker))))
        return
    # checked here, not as option callbacks: the checks import irncodec and torch, which Pillow workers must not
    codec = _lossy_codec(codec)
    scales = scales_option(click.get_current_context(), None, scale_texts)  # type: ignore[arg-type]
    from tqdm import tqdm

    notes: list[str] = []
    models = resolve_models(scales, model)
    if model is None:  # the model `irncodec encode -c CODEC [-q LEVEL]` picks
        from irncodec import zoo
        from irncodec.errors import ModelError

        try:
            models = {s: zoo.default_model(s, codec, level if _per_level(codec) else None) for s in models}
        except ModelError as exc:
            raise click.BadParameter(str(exc), param_hint="--level") from None
    devices = ["cpu"] + (["cuda"] if cuda_available() else [])
    images = list_images(dataset, limit)
    jobs = plan(images, models, pillow_methods(notes), quality, repeat, threads, devices,
                codec, level)
    for note in notes:
        click.echo(note, err=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(job, Path(tmp), measure_in_subprocess)
                for job in tqdm(jobs, desc="measurements", unit="job", file=sys.stderr)]
        cold_rows = []
        if cold:  # the command line picks its own model unless one is named, as a user's call does
            commands = cold_commands(images[0], Path(tmp), quality, model, codec,
                                     level if _per_level(codec) else None, threads)
            cold_rows = time_commands(commands, repeat)
    means = mean_rows(rows)
    rows += means
    rows.sort(key=lambda r: (r["image"] == "mean", r["image"], r["method"], r["device"]))
    out.mkdir(parents=True, exist_ok=True)
    meta = {"dataset": str(dataset), "repeat": repeat, "threads": threads, "quality": quality,
            "codec": codec, "level": level if _per_level(codec) else None,
            "models": {str(s): m for s, m in models.items()}, "notes": notes,
            "cpu_count": os.cpu_count()}
    with open(out / "speed.json", "w") as f:
        json.dump({"meta": meta, "rows": rows, "cold": cold_rows}, f, indent=2)
        f.write("\n")
    table = speed_markdown(rows) + "\n" + avif_multiples(means)
    if cold_rows:
        table += "\n" + cold_markdown(cold_rows, images[0].name)
    header = (f"# Speed ({len(rows)} rows, quality {quality}, median of {repeat}, "
              f"threads {threads or 'default'})\n\n")
    (out / "speed.md").write_text(header + table + "".join(f"\n{n}\n" for n in notes))
    click.echo(table)
    click.echo(f"wrote {out}/speed.json, speed.md")


if __name__ == "__main__":
    main()
