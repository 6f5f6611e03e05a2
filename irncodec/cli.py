"""Command line: ``irncodec encode|decode|info|models|train|export``.

Modelled on cwebp/cjxl: one verb, a few obvious flags, quiet by default.
Every user mistake ends in one ``irncodec: error: ...`` line and exit code 1;
outputs are checked before the work starts and written atomically (see
:mod:`irncodec.fileio`), so a failure, Ctrl-C, SIGTERM or SIGHUP leaves no
partial file.
"""

from __future__ import annotations

import contextlib
import io
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

import click

from . import __version__
from .errors import OutputError
from .lr_codecs import DEFAULT_CODEC, available_codecs, codec_class, codecs_with_option, option_choices

if TYPE_CHECKING:
    from .batch import Job

#: Decoded images are written losslessly: WebP too (Pillow's default would
#: recompress them lossily at quality 80), unless --output-quality asks otherwise.
SAVE_OPTIONS = {"WEBP": {"lossless": True, "exact": True}}
OUTPUT_FORMATS = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
                  ".webp": "WEBP", ".ppm": "PPM", ".pgm": "PPM", ".jpg": "JPEG", ".jpeg": "JPEG"}
#: Output formats that only store lossily: written only at an explicit --output-quality.
LOSSY_OUTPUTS = ("JPEG",)
#: Output formats written lossily when --output-quality is given.
QUALITY_OUTPUTS = ("JPEG", "WEBP")


def _codec_help() -> tuple[str, str]:
    """Help for -c and -q, from the registered LR codecs."""
    names = available_codecs()
    codec = "LR codec: " + ", ".join(n + " (learned; one model per -q level)" * codec_class(n).per_level_models
                                     for n in names)
    quality = "LR codec quality: " + ", ".join(
        f"{n} {codec_class(n).quality_help()} [default: {codec_class(n).default_quality}]" for n in names
        if not codec_class(n).lossless)
    return f"{codec} [default: {DEFAULT_CODEC}].", quality + "."


def _threads_option(f: Any) -> Any:
    return click.option("--threads", type=click.IntRange(min=1), default=None,
                        help="CPU threads for the network [default: the CPUs this process may use].")(f)


def _threads(threads: int | None) -> int:
    from .threads import available_cpus

    return available_cpus() if threads is None else threads


_CODEC_HELP, _QUALITY_HELP = _codec_help()
_SUBSAMPLING_CODECS = codecs_with_option("subsampling")


def _fail(message: str) -> NoReturn:
    click.echo(f"irncodec: error: {message}", err=True)
    sys.exit(1)


class _Terminated(BaseException):
    """Raised by the SIGTERM/SIGHUP handler so that cleanup (temporary files) runs as for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated(signum)


def install_signal_handlers() -> dict[int, Any]:
    """SIGTERM and SIGHUP unwind like Ctrl-C does (the default would kill without cleanup).

    Returns the handlers they replace, for :func:`restore_signal_handlers`.
    """
    previous: dict[int, Any] = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            previous[sig] = signal.signal(sig, _terminate)
    return previous


def restore_signal_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


class _Group(click.Group):
    """Turns library errors, Ctrl-C, SIGTERM and SIGHUP into one line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        from .errors import IrnError

        previous = install_signal_handlers()
        try:
            return super().invoke(ctx)
        except IrnError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            click.echo("irncodec: interrupted", err=True)
            sys.exit(130)
        except _Terminated as exc:
            click.echo(f"irncodec: terminated ({signal.Signals(exc.signum).name})", err=True)
            sys.exit(128 + exc.signum)
        finally:
            restore_signal_handlers(previous)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version")
def main() -> None:
    """Lossy image compression by invertible image rescaling (IRN)."""


def _output_format(path: Path) -> str:
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        _fail(f"cannot write '{path.name}': use one of {', '.join(sorted(OUTPUT_FORMATS))}")
    return fmt


def _save_options(fmt: str, path: Path, output_quality: int | None) -> dict[str, Any]:
    """How a decoded image is saved: losslessly, or at the quality asked for a lossy format
    (a lossy format without --output-quality is refused: no silent recompression)."""
    if output_quality is None:
        if fmt in LOSSY_OUTPUTS:
            raise OutputError(f"{fmt} is a lossy format: writing '{path.name}' would compress the decoded image again; "
                              "give --output-quality Q (1-100) to do so, or write a lossless .png, .webp or .tiff")
        return SAVE_OPTIONS.get(fmt, {})
    if fmt not in QUALITY_OUTPUTS:
        raise OutputError(f"'{path.suffix}' files are lossless: --output-quality applies to "
                          f"{', '.join(k for k, v in OUTPUT_FORMATS.items() if v in QUALITY_OUTPUTS)} outputs")
    return {"quality": output_quality, "lossless": False} if fmt == "WEBP" else {"quality": output_quality}


_FILES_HELP = """
    Several inputs go into a folder: `INPUT... -o FOLDER/` writes
    FOLDER/<name>{suffix} for each (the folder is created if its name ends in
    '/'). '-' is standard input as INPUT and standard output as OUTPUT or -o.
    An existing output file is only replaced with -f/--force.
    """


def _files_options(default_suffix: str) -> Any:
    def decorate(f: Any) -> Any:
        f = click.option("--suffix", default=default_suffix, show_default=True, metavar="EXT",
                         help="Suffix (and so format) of the outputs in -o FOLDER/ and on stdout.")(f)
        f = click.option("-f", "--force", is_flag=True, help="Overwrite existing output files.")(f)
        f = click.option("-o", "--output", "output", default=None, metavar="FILE|FOLDER/",
                         help="Output file, or folder for one output per INPUT ('-': stdout).")(f)
        f = click.argument("paths", nargs=-1, required=True, metavar="INPUT... [OUTPUT]")(f)
        return f
    return decorate


@dataclass
class _Done:
    """What one job made: for -v and the batch summary."""

    pixels: int
    bytes: int


def _plan_jobs(paths: tuple[str, ...], output: str | None, suffix: str, force: bool) -> list[Job]:
    """The jobs of a command line, their outputs checked (and -o FOLDER/ created) before any work."""
    from .batch import STDIO, UsageError, is_folder, make_folder, plan
    from .fileio import check_output

    if not suffix.startswith(".") or len(suffix) < 2:
        raise click.BadParameter(f"'{suffix}' is not a file suffix such as .png", param_hint="--suffix")
    try:
        jobs = plan(paths, output, suffix.lower())
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    if output is not None and output != STDIO and is_folder(output):
        make_folder(output)
    for job in jobs:
        if job.output != STDIO:
            check_output(job.output, [job.input] if job.input != STDIO else [], overwrite=force)
    return jobs


def _target(job: Job, suffix: str) -> str:
    """The output's name for choosing its format: stdout takes --suffix."""
    from .batch import STDIO

    return f"<stdout>{suffix}" if job.output == STDIO else job.output


def _write(job: Job, data: bytes | None = None, save: Callable[[BinaryIO], None] | None = None) -> None:
    """Write an output (bytes, or by a save function) to its file, atomically, or to stdout."""
    from .batch import STDIO, stdout_stream
    from .fileio import atomic_write_bytes, atomic_write_with

    if job.output == STDIO:
        stream = stdout_stream()
        if data is not None:
            stream.write(data)
        elif save is not None:
            buffer = io.BytesIO()
            save(buffer)
            stream.write(buffer.getvalue())
        stream.flush()
    elif data is not None:
        atomic_write_bytes(job.output, data)
    elif save is not None:
        atomic_write_with(job.output, save)


def _source(job: Job) -> Any:
    """The job's input: its path, or standard input."""
    from .batch import STDIO, stdin_stream

    return stdin_stream() if job.input == STDIO else Path(job.input)


@contextlib.contextmanager
def _tile_progress(show: bool) -> Iterator[None]:
    """A bar over the tiles of one large image (on a terminal, or with -v)."""
    if not show:
        yield
        return
    from tqdm import tqdm

    from .progress import reporting

    bars: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if total < _TILES_FOR_A_BAR:
            return
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="tile", file=sys.stderr, leave=False)
        bar.update(done - bar.n)

    try:
        with reporting(update):
            yield
    finally:
        for bar in bars.values():
            bar.close()


#: Tiles (256 LR pixels a side) an image needs before its progress is shown: about 4 MP at x2.
_TILES_FOR_A_BAR = 16


def _run(jobs: list[Job], work: Callable[[Job, bool], _Done], verbose: bool, verb: str) -> None:
    """Do each job; with several, a bar on a terminal, and a summary on a terminal or with -v.

    One job's failure ends a single-file run with its error; in a batch it is
    reported with the input's name, the other files are still coded, and the
    exit status is 1.
    """
    from tqdm import tqdm

    from .errors import IrnError

    if len(jobs) == 1:
        work(jobs[0], verbose or sys.stderr.isatty())
        return
    start = time.perf_counter()
    failed, done = [], []
    on_terminal = sys.stderr.isatty()
    with tqdm(total=len(jobs), unit="file", file=sys.stderr, disable=not on_terminal, leave=False) as bar:
        for job in jobs:
            try:
                done.append(work(job, False))
            except IrnError as exc:
                failed.append(job)
                bar.write(f"irncodec: error: {job.input_name}: {exc}", file=sys.stderr)
            bar.update()
    if verbose or on_terminal:
        pixels, size = sum(d.pixels for d in done), sum(d.bytes for d in done)
        written = f", {size} bytes, {size * 8 / pixels:.4f} bpp" if pixels and size else ""
        click.echo(f"{verb} {len(done)} of {len(jobs)} files: {pixels / 1e6:.2f} MP{written}, "
                   f"{time.perf_counter() - start:.2f} s", err=True)
    if failed:
        sys.exit(1)


@main.command(epilog=_FILES_HELP.format(suffix=".irn"))
@_files_options(".irn")
@click.option("-q", "--quality", type=int, default=None, help=_QUALITY_HELP)
@click.option("-c", "--codec", default=None, help=_CODEC_HELP)
@click.option("-s", "--scale", type=click.FloatRange(1.1, 4.0), default=None,
              help="Downscaling factor, 1.1 to 4: 2 and 4 are the networks' own, others resample the image "
                   "for the next network up [default: 2].")
@click.option("-m", "--model", default=None,
              help="Zoo model name or .safetensors path [default: the one trained for the codec].")
@click.option("--subsampling", type=click.Choice(option_choices("subsampling")), default=None,
              help=f"Chroma subsampling ({', '.join(_SUBSAMPLING_CODECS)}) [default: 4:2:0].")
@click.option("-t", "--target-bpp", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Make the best file of at most this many bits per pixel, choosing scale, codec, "
                   "quality and model (only among -c/-s when given). Encodes several paths: slower.")
@click.option("--strip", is_flag=True,
              help="Leave out the ICC colour profile and EXIF data (kept by default, and restored by decode).")
@click.option("--frame", type=click.IntRange(min=0), default=None,
              help="Which frame of an animation or page of a multi-page file to encode, 0 for the first "
                   "(such inputs are refused without it).")
@_threads_option
@click.option("-v", "--verbose", is_flag=True, help="Print size, bpp and time.")
def encode(paths: tuple[str, ...], output: str | None, force: bool, suffix: str, quality: int | None,
           codec: str | None, scale: float | None, model: str | None, subsampling: str | None,
           target_bpp: float | None, strip: bool, frame: int | None, threads: int | None, verbose: bool) -> None:
    """Compress image INPUT to OUTPUT (.irn).

    An OUTPUT ending in .jpg, .webp or .png is instead a standard image file of
    that LR codec's path that any viewer shows (the small LR image), carrying
    the rest of the .irn file in its metadata: decode restores the full size.

    The image is stored upright (its EXIF orientation applied) with its ICC
    profile and EXIF data, unless --strip; pixels are not colour-converted.
    """
    from . import viewable

    if subsampling is not None and (codec or DEFAULT_CODEC) not in _SUBSAMPLING_CODECS:
        _fail(f"--subsampling applies to the {', '.join(_SUBSAMPLING_CODECS)} codec only")
    if target_bpp is not None and (quality is not None or model is not None):
        _fail("--target-bpp picks the quality and the model itself: drop -q/--quality and -m/--model")
    jobs = _plan_jobs(paths, output, suffix, force)
    for job in jobs:  # out.jpg: a JPEG any viewer opens (in a batch, every output has the same suffix)
        out_suffix = Path(_target(job, suffix)).suffix
        carrier = viewable.codec_for_suffix(out_suffix)
        if carrier is not None:
            if codec is not None and codec != carrier:
                _fail(f"'{out_suffix}' files hold the LR image of the {carrier} path: "
                      f"use -c {carrier}, or an .irn output")
            codec = carrier

    def encode_one(job: Job, show_progress: bool) -> _Done:
        from . import codec as irn_codec
        from . import imageio
        from .threads import limited_threads

        start = time.perf_counter()
        image = imageio.load_image(_source(job), frame)
        carrier = viewable.codec_for_suffix(Path(_target(job, suffix)).suffix)
        with limited_threads(_threads(threads)), _tile_progress(show_progress):
            if target_bpp is not None:
                from .ratecontrol import encode_to_target

                result = encode_to_target(image, target_bpp, codec, scale, subsampling,
                                          extra_bytes=viewable.MAX_OVERHEAD if carrier else 0,
                                          keep_metadata=not strip)
                data = result.data
                if verbose:
                    c = result.choice
                    step = "" if c.step == 1 else f" step {c.step:g}"
                    click.echo(f"{job.input_name}: chose x{c.scale:g} {c.codec} q{c.quality}{step} ({c.model}): "
                               f"{c.psnr:.2f} dB, best of {len(result.candidates)} fitting path(s)", err=True)
            else:
                data = irn_codec.encode(image, quality=quality, codec=codec, scale=scale,
                                        model=model, subsampling=subsampling, keep_metadata=not strip)
        if carrier is not None:
            data = viewable.wrap(data)
        _write(job, data)
        if verbose:
            bpp = len(data) * 8 / (image.width * image.height)
            click.echo(f"{job.input_name} -> {job.output_name}: {image.width}x{image.height}, {len(data)} bytes, "
                       f"{bpp:.4f} bpp, {time.perf_counter() - start:.2f} s", err=True)
        return _Done(image.width * image.height, len(data))

    _run(jobs, encode_one, verbose, "encoded")


@main.command(epilog=_FILES_HELP.format(suffix=".png"))
@_files_options(".png")
@click.option("-m", "--model", default=None, help="Override the model named in the file.")
@click.option("--temperature", type=click.FloatRange(min=0), default=None,
              help="Spread of the latent z drawn at decode, relative to the model's prior "
                   "(0 = its mean, 1 = the prior) [default: the model's own, 0 for most].")
@click.option("--lr-only", is_flag=True, help="Write the stored LR image without upscaling.")
@click.option("-Q", "--output-quality", type=click.IntRange(1, 100), default=None,
              help="Write a lossy OUTPUT at this quality: needed for .jpg (refused without it, so "
                   "nothing is compressed again unasked); makes .webp lossy [default: .webp lossless].")
@_threads_option
@click.option("-v", "--verbose", is_flag=True, help="Print size and time.")
def decode(paths: tuple[str, ...], output: str | None, force: bool, suffix: str, model: str | None,
           temperature: float | None, lr_only: bool, output_quality: int | None, threads: int | None,
           verbose: bool) -> None:
    """Decompress INPUT (.irn, or a .jpg/.webp/.png written by encode) to image OUTPUT
    (format from its extension). With --lr-only, an OUTPUT of the stored LR image's
    own format (.jpg for the JPEG path) gets its bytes exactly as stored.

    The ICC profile and EXIF data the file carries are written into OUTPUT
    (.png, .jpg, .webp, .tiff; other formats cannot hold them, which is said).
    """
    from . import viewable

    jobs = _plan_jobs(paths, output, suffix, force)
    for job in jobs:
        name = Path(_target(job, suffix))
        if not (lr_only and viewable.codec_for_suffix(name.suffix.lower())):
            _save_options(_output_format(name), name, output_quality)

    def decode_one(job: Job, show_progress: bool) -> _Done:
        from . import codec as irn_codec
        from .metadata import save_keywords
        from .threads import limited_threads

        start = time.perf_counter()
        name = Path(_target(job, suffix))
        irn = viewable.read(_source(job))
        if lr_only and viewable.codec_for_suffix(name.suffix.lower()) == irn.header.codec:
            if output_quality is not None:
                raise OutputError(f"--lr-only writes the stored {irn.header.codec} image as it is: "
                                  "drop --output-quality")
            if irn.metadata:
                click.echo(f"irncodec: warning: the stored LR image is written as it is, without the "
                           f"file's metadata ({irn.metadata.describe()})", err=True)
            _write(job, irn.payload)  # the stored bytes, exactly
            if verbose:
                click.echo(f"{job.input_name} -> {job.output_name}: the stored {irn.header.codec} LR image, "
                           f"{len(irn.payload)} bytes", err=True)
            return _Done(irn.header.lr_width * irn.header.lr_height, 0)
        fmt = _output_format(name)
        options = _save_options(fmt, name, output_quality)
        with limited_threads(_threads(threads)), _tile_progress(show_progress):
            if lr_only:
                image = irn_codec.decode_lr(irn, model=model)
            else:
                image = irn_codec.decode(irn, model=model, temperature=temperature)
        if fmt in ("PPM", "JPEG") and image.mode in ("LA", "RGBA"):
            raise OutputError(f"'{name.suffix}' cannot hold an alpha channel: use .png")
        keywords, dropped = save_keywords(fmt, irn.metadata)
        if dropped:
            click.echo(f"irncodec: warning: {name.name} is written without the {' and the '.join(dropped)}: "
                       f"'{name.suffix}' files cannot hold {'it' if len(dropped) == 1 else 'them'}", err=True)
        _write(job, save=lambda f: image.save(f, format=fmt, **options, **keywords))
        if verbose:
            click.echo(f"{job.input_name} -> {job.output_name}: {image.width}x{image.height} {image.mode}, "
                       f"{time.perf_counter() - start:.2f} s", err=True)
        return _Done(image.width * image.height, 0)

    _run(jobs, decode_one, verbose, "decoded")


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
def info(file: Path) -> None:
    """Print the header of an .irn FILE (or of the .irn file a .jpg/.webp/.png from encode carries)."""
    from . import viewable

    irn = viewable.read(file)
    h = irn.header
    kind = codec_class(h.codec)
    settings = ", ".join(filter(None, ["" if kind.lossless else f"q{h.quality}", kind.describe(irn.payload)]))
    rows = [
        ("file", str(file)), ("format version", str(h.version)),
        ("model", h.model + (f" (weights {h.fingerprint.hex()})" if h.fingerprint else "")),
        ("scale", f"x{h.scale}" if h.network_size is None else
         f"x{h.effective_scale:.3g} (the x{h.scale} network on the image resampled to "
         f"{h.network_width}x{h.network_height})"),
        ("size", f"{h.width}x{h.height}"), ("mode", h.mode),
        ("LR size", f"{h.lr_width}x{h.lr_height} (padding {h.pad_x},{h.pad_y})"),
        ("LR codec", h.codec + (f" {settings}" if settings else "")),
        ("LR payload", f"{len(irn.payload)} bytes"),
        ("alpha", f"{len(irn.alpha)} bytes (png)" if irn.alpha else "none"),
        ("metadata", irn.metadata.describe()),
        ("file size", f"{irn.size} bytes"), ("bits per pixel", f"{irn.bits_per_pixel():.4f}"),
    ]
    for key, value in rows:
        click.echo(f"{key + ':':16}{value}")


@main.command()
def models() -> None:
    """List the pretrained models."""
    from .zoo import DEFAULT_MODELS, LEVEL_MODELS, available_models, default_model

    defaults = {default_model(scale, codec) for scale in DEFAULT_MODELS
                for codec in available_codecs() if not codec_class(codec).per_level_models}
    defaults |= {name for per_level in LEVEL_MODELS.values() for name in per_level.values()}
    per_level = ", ".join(LEVEL_MODELS)
    click.echo(f"(* = used by default for its scale and LR codec; {per_level}: one model per -q level)")
    models = available_models()
    width = max(map(len, models), default=0)
    for name, entry in models.items():
        mark = "*" if name in defaults else " "
        params = entry.get("parameters") or 0
        click.echo(f"{mark} {name:{width}} x{entry['scale']}  {params:>9,} params  {entry['description']}")


@main.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--run-dir", type=click.Path(path_type=Path), default=None, help="[default: runs/NAME]")
@click.option("--iterations", type=int, default=None, help="Override the run's length (and LR schedule).")
@click.option("--stop-at", type=int, default=None, help="Pause at this iteration; resume later.")
@click.option("--no-resume", is_flag=True, help="Start afresh even if a checkpoint exists.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def train(config: Path, run_dir: Path | None, iterations: int | None, stop_at: int | None,
          no_resume: bool, quiet: bool) -> None:
    """Train a model described by a YAML CONFIG (see configs/); resumes by default."""
    from .train import train as run_training

    run_training(config, run_dir, resume=not no_resume, iterations=iterations, progress=not quiet,
                 stop_at=stop_at)


@main.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("output", type=click.Path(path_type=Path), required=False)
@click.option("--fp32", is_flag=True, help="Keep float32 weights (default: float16).")
@click.option("--register", "name", default=None,
              help="Ship as zoo model NAME inside the package (maintainers).")
@click.option("--description", default="", help="With --register: one line for `irncodec models`.")
@click.option("--eval-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="With --register: measure PSNR on these images into the training record.")
@click.option("--decode-temperature", type=click.FloatRange(min=0), default=None,
              help="How decoding draws z for this model unless told (0 = the prior's mean) "
                   "[default: the weights' own, 0 for most].")
@click.option("--exact-coder", is_flag=True,
              help="Run the entropy coder in integers: its files decode the same on every machine.")
def export(checkpoint: Path, output: Path | None, fp32: bool, name: str | None,
           description: str, eval_dir: Path | None, decode_temperature: float | None, exact_coder: bool) -> None:
    """Write the model of a training CHECKPOINT (.pt, or float32 .safetensors weights) as a .safetensors OUTPUT."""
    from .train import export_checkpoint, release

    if name is not None:
        if output is not None or fp32:
            _fail("--register writes fp16 weights into the package: give no OUTPUT or --fp32")
        record = release(checkpoint, name, description, eval_dir, decode_temperature, exact_coder)
        click.echo(f"registered {name}: {record['iterations']} iterations, {record['parameters']:,} parameters")
        return
    if output is None or output.suffix != ".safetensors":
        _fail("give an OUTPUT ending in .safetensors")
    export_checkpoint(checkpoint, output, half=not fp32, decode_temperature=decode_temperature,
                      exact_coder=exact_coder)


if __name__ == "__main__":
    main()
