#!/usr/bin/env python
"""Large photos: time and peak memory of encode/decode at 6, 12 and 24 megapixels,
and how far tiled processing is from whole-image processing.

    python benchmarks/large_images.py                 # 6, 12, 24 MP from kodim23
    python benchmarks/large_images.py --mp 6 --threads 2

Test images are a Kodak photo upscaled (bicubic) to each size. Each encode and
each decode runs in a fresh Python process, so its peak resident memory
(VmHWM) is its own. The seam check encodes and decodes one Kodak image with the
codec's tiles and with one tile covering the image, and reports the RGB PSNR
of both against the original. Writes ``large_images.md`` and ``.json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

if not __package__:  # run as a script: the repository root, where the benchmarks package is, goes on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import DEFAULT_DATASET, DEFAULT_OUT

WORKER = r"""
import json, sys, time, torch
threads = int(sys.argv[4])
if threads: torch.set_num_threads(threads)
import irncodec
from irncodec import imageio
phase, src, dst = sys.argv[1:4]
start = time.perf_counter()
if phase == "encode":
    data = irncodec.encode(imageio.load_image(src), quality=75)
    open(dst, "wb").write(data)
else:
    irncodec.decode(open(src, "rb").read()).save(dst)
elapsed = time.perf_counter() - start
peak = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0] / 1024
print(json.dumps({"seconds": elapsed, "peak_mb": peak}))
"""


def run_phase(phase: str, src: Path, dst: Path, threads: int) -> dict[str, float]:
    """One encode or decode in a fresh process: wall time inside it and its peak RSS."""
    result = subprocess.run([sys.executable, "-c", WORKER, phase, str(src), str(dst), str(threads)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise click.ClickException(f"{phase} of {src.name} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def make_image(source: Path, megapixels: float, path: Path) -> tuple[int, int]:
    """``source`` upscaled (bicubic) to about ``megapixels``, keeping its aspect ratio."""
    from PIL import Image

    with Image.open(source) as img:
        aspect = img.width / img.height
        height = round((megapixels * 1e6 / aspect) ** 0.5)
        width = round(height * aspect)
        img.convert("RGB").resize((width, height), Image.BICUBIC).save(path)
    return width, height


def seam_check(source: Path) -> dict[str, float]:
    """RGB PSNR of a decoded Kodak image with the codec's tiles and with one whole-image tile."""
    import irncodec
    from irncodec import imageio, metrics, tensors, tiling

    img = imageio.load_image(source).convert("RGB")
    ref = tensors.image_to_tensor(img)
    scores = {}
    for label, tile in (("tiled", tiling.TILE), ("whole", 100_000)):
        original, tiling.TILE = tiling.TILE, tile
        try:
            out = irncodec.decode(irncodec.encode(img, quality=75))
        finally:
            tiling.TILE = original
        scores[label] = metrics.psnr(ref, tensors.image_to_tensor(out))
    return scores


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--mp", "sizes", multiple=True, type=float, help="Megapixels (repeatable) [default: 6, 12, 24].")
@click.option("--source", type=click.Path(path_type=Path, dir_okay=False),
              default=DEFAULT_DATASET / "kodim23.png", show_default="../shared/datasets/kodak/kodim23.png")
@click.option("--threads", type=click.IntRange(min=0), default=0, help="torch threads (0: torch's choice).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_OUT,
              show_default="benchmarks/results")
def main(sizes: tuple[float, ...], source: Path, threads: int, out: Path) -> None:
    """Time and peak memory of irncodec on large photos (default model, JPEG q75)."""
    if not source.is_file():
        raise click.BadParameter(f"image not found: {source}", param_hint="--source")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mp in sizes or (6.0, 12.0, 24.0):
            big = Path(tmp) / f"{mp:g}mp.png"
            width, height = make_image(source, mp, big)
            enc = run_phase("encode", big, Path(tmp) / "x.irn", threads)
            dec = run_phase("decode", Path(tmp) / "x.irn", Path(tmp) / "x.png", threads)
            rows.append({"megapixels": round(width * height / 1e6, 2), "size": f"{width}x{height}",
                         "irn_bytes": (Path(tmp) / "x.irn").stat().st_size,
                         "encode_s": enc["seconds"], "encode_peak_mb": enc["peak_mb"],
                         "decode_s": dec["seconds"], "decode_peak_mb": dec["peak_mb"]})
            click.echo(f"{rows[-1]['size']}: encode {enc['seconds']:.1f} s / {enc['peak_mb']:.0f} MB, "
                       f"decode {dec['seconds']:.1f} s / {dec['peak_mb']:.0f} MB", err=True)
    seams = seam_check(source)
    lines = ["| image | encode s | encode peak MB | decode s | decode peak MB |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['size']} ({r['megapixels']} MP) | {r['encode_s']:.1f} | {r['encode_peak_mb']:.0f} | "
                     f"{r['decode_s']:.1f} | {r['decode_peak_mb']:.0f} |")
    lines += ["", f"Seams ({source.name}, JPEG q75): tiled {seams['tiled']:.3f} dB, whole image "
                  f"{seams['whole']:.3f} dB, difference {seams['tiled'] - seams['whole']:+.3f} dB."]
    table = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / "large_images.md").write_text("# Large images\n\n`python benchmarks/large_images.py`\n\n" + table)
    (out / "large_images.json").write_text(json.dumps({"rows": rows, "seams": seams,
                                                       "time": time.strftime("%Y-%m-%d")}, indent=2) + "\n")
    click.echo(table)


if __name__ == "__main__":
    main()
