"""The command line through click's runner: round trips and one-line errors."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from irncodec.cli import main

from .conftest import photo_like


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "in.png"
    photo_like(33, 21).save(path)
    return path


def run(runner, *args):
    return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_info_shows_an_entropy_streams_step(runner):
    corpus = Path(__file__).resolve().parent / "conformance"
    info = run(runner, "info", corpus / "v3-irn-x2-entropy-q3-v3-entropy3-step1.3-RGB-41x27.irn")
    assert info.exit_code == 0
    assert "format version: 3\n" in info.output and "LR codec:       entropy q3, step 1.3\n" in info.output
    info = run(runner, "info", corpus / "v2-irn-x2-entropy-q3-v3-entropy3-RGB-41x27.irn")
    assert "format version: 2\n" in info.output and "LR codec:       entropy q3\n" in info.output


def test_encode_info_decode(runner, png, tmp_path, tiny_weights):
    irn, out = tmp_path / "a.irn", tmp_path / "out.png"
    result = run(runner, "encode", png, irn, "-q", 85, "--model", tiny_weights[2])
    assert result.exit_code == 0 and result.output == ""  # quiet by default
    info = run(runner, "info", irn)
    assert info.exit_code == 0
    assert "tiny-x2" in info.output and "jpeg q85" in info.output and "33x21" in info.output
    from irncodec import zoo
    weights = zoo.fingerprint(zoo.load_model(tiny_weights[2])).hex()
    assert "format version: 2\n" in info.output and f"tiny-x2 (weights {weights})" in info.output
    result = run(runner, "decode", irn, out, "--model", tiny_weights[2])
    assert result.exit_code == 0
    assert Image.open(out).size == (33, 21)


def test_verbose_reports_bpp(runner, png, tmp_path, tiny_weights):
    result = run(runner, "encode", png, tmp_path / "a.irn", "-c", "webp", "-s", "4", "-m", tiny_weights[4], "-v")
    assert result.exit_code == 0 and "bpp" in result.output


def test_lr_only(runner, png, tmp_path, tiny_weights):
    run(runner, "encode", png, tmp_path / "a.irn", "-m", tiny_weights[2], "-c", "png")
    assert run(runner, "decode", tmp_path / "a.irn", tmp_path / "lr.png", "--lr-only").exit_code == 0
    assert Image.open(tmp_path / "lr.png").size == (17, 11)


@pytest.mark.parametrize("content", [b"", b"hello", b"\x89IRN\x01 truncated"])
def test_bad_irn_is_one_line_error_and_no_output(runner, tmp_path, content, tiny_weights):
    bad, out = tmp_path / "bad.irn", tmp_path / "out.png"
    bad.write_bytes(content)
    result = run(runner, "decode", bad, out, "-m", tiny_weights[2])
    assert result.exit_code == 1
    assert result.output.startswith("irncodec: error: ") and result.output.count("\n") == 1
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


@pytest.mark.parametrize("make_input", [
    lambda p: p / "missing.png",
    lambda p: p,  # a directory
    lambda p: ((p / "empty.png").write_bytes(b"") and p / "empty.png") or p / "empty.png",
    lambda p: (p / "text.png").write_text("not an image") and p / "text.png",
])
def test_bad_image_is_one_line_error(runner, tmp_path, make_input, tiny_weights):
    src = make_input(tmp_path)
    out = tmp_path / "out.irn"
    result = run(runner, "encode", src, out, "-m", tiny_weights[2])
    assert result.exit_code == 1 and result.output.startswith("irncodec: error: ")
    assert result.output.count("\n") == 1 and not out.exists()


def test_unsupported_mode(runner, tmp_path, tiny_weights):
    src = tmp_path / "float.tif"
    Image.new("F", (8, 8), 0.5).save(src)
    result = run(runner, "encode", src, tmp_path / "o.irn", "-m", tiny_weights[2])
    assert result.exit_code == 1 and "mode" in result.output


@pytest.mark.parametrize("args,needle", [
    (["-q", "500"], "quality"),
    (["-c", "gif"], "codec"),
    (["-m", "nope"], "unknown model"),
    (["-c", "webp", "--subsampling", "4:4:4"], "jpeg"),
])
def test_bad_options(runner, png, tmp_path, args, needle):
    result = run(runner, "encode", png, tmp_path / "o.irn", *args)
    assert result.exit_code != 0 and needle in result.output
    assert not (tmp_path / "o.irn").exists()


def test_bad_output_extension(runner, png, tmp_path, tiny_weights):
    run(runner, "encode", png, tmp_path / "a.irn", "-m", tiny_weights[2])
    result = run(runner, "decode", tmp_path / "a.irn", tmp_path / "out.xyz", "-m", tiny_weights[2])
    assert result.exit_code == 1 and "cannot write" in result.output


def test_existing_output_survives_failure(runner, tmp_path, tiny_weights):
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    (tmp_path / "bad.irn").write_bytes(b"junk")
    run(runner, "decode", tmp_path / "bad.irn", out, "-m", tiny_weights[2])
    assert out.read_bytes() == b"keep me"


def test_models_lists_zoo(runner):
    result = run(runner, "models")
    assert result.exit_code == 0


def test_output_in_missing_folder_is_one_line_error(runner, png, tmp_path, tiny_weights):
    result = run(runner, "encode", png, tmp_path / "no" / "such" / "a.irn", "-m", tiny_weights[2])
    assert result.exit_code == 1 and result.output.startswith("irncodec: error: cannot write")


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_non_finite_or_negative_temperature_is_one_line_error(runner, png, tmp_path, tiny_weights, value):
    irn = tmp_path / "a.irn"
    run(runner, "encode", png, irn, "-m", tiny_weights[2])
    result = run(runner, "decode", irn, tmp_path / "o.png", "-m", tiny_weights[2], f"--temperature={value}")
    assert result.exit_code != 0 and "temperature" in result.output
    assert not (tmp_path / "o.png").exists()


def test_output_equal_to_input_is_refused_before_any_work(runner, png, tmp_path, tiny_weights):
    before = png.read_bytes()
    link = tmp_path / "link.png"
    link.symlink_to(png)
    for out in (png, link):
        result = run(runner, "encode", png, out, "-m", tiny_weights[2])
        assert result.exit_code == 1 and "also the input" in result.output
        assert result.output.count("\n") == 1
    assert png.read_bytes() == before


def test_output_naming_a_folder_is_refused(runner, png, tmp_path, tiny_weights):
    result = run(runner, "encode", png, f"{tmp_path}/newdir/", "-m", tiny_weights[2])
    assert result.exit_code == 1 and "ends in '/'" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_sigterm_during_encode_exits_143_and_leaves_no_output(png, tmp_path, tiny_weights):
    """A real process, killed by SIGTERM in the middle of the work: exit 143, no file, no temp file."""
    import subprocess
    import sys

    script = f"""
import os, signal
from irncodec import pipeline
from irncodec.cli import main
real = pipeline.downscale
def slow(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    return real(*args, **kwargs)
pipeline.downscale = slow
main(["encode", {str(png)!r}, {str(tmp_path / 'o.irn')!r}, "-m", {tiny_weights[2]!r}])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert done.returncode == 143 and b"terminated (SIGTERM)" in done.stderr, done.stderr.decode()[-500:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_newer_format_version_is_one_line_error(runner, png, tmp_path, tiny_weights):
    irn = tmp_path / "a.irn"
    run(runner, "encode", png, irn, "-m", tiny_weights[2])
    data = bytearray(irn.read_bytes())
    data[4] = 6  # the version byte follows the 4-byte magic
    irn.write_bytes(bytes(data))
    for args in (["info", irn], ["decode", irn, tmp_path / "o.png", "-m", tiny_weights[2]]):
        result = run(runner, *args)
        assert result.exit_code == 1 and "version 6 (this irncodec reads versions 1, 2, 3, 4, 5)" in result.output
        assert result.output.count("\n") == 1


@pytest.mark.parametrize("make_input", [
    lambda p: p,  # a directory
    lambda p: p / "missing.irn",
])
def test_bad_irn_path_is_one_line_error(runner, tmp_path, make_input, tiny_weights):
    result = run(runner, "decode", make_input(tmp_path), tmp_path / "o.png", "-m", tiny_weights[2])
    assert result.exit_code == 1 and result.output.startswith("irncodec: error: ")
    assert result.output.count("\n") == 1 and not (tmp_path / "o.png").exists()


def test_missing_weights_file_is_one_line_error(runner, png, tmp_path):
    result = run(runner, "encode", png, tmp_path / "o.irn", "-m", tmp_path / "gone.safetensors")
    assert result.exit_code == 1 and "weights file not found" in result.output
    assert not (tmp_path / "o.irn").exists()


def test_ctrl_c_leaves_no_output(runner, png, tmp_path, tiny_weights, monkeypatch):
    from irncodec import pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "downscale", interrupted)
    result = run(runner, "encode", png, tmp_path / "o.irn", "-m", tiny_weights[2])
    assert result.exit_code == 130 and "interrupted" in result.output
    assert not (tmp_path / "o.irn").exists() and not list(tmp_path.glob("*.tmp*"))


def test_same_input_gives_the_same_bytes_in_separate_processes(png, tmp_path, tiny_weights):
    """Determinism across runs: fixed algorithms and a seeded z, not just one process's state."""
    import subprocess
    import sys

    outputs = []
    for i in range(2):
        irn, out = tmp_path / f"{i}.irn", tmp_path / f"{i}.png"
        for args in (["encode", png, irn, "-q", "70", "-m", tiny_weights[2]],
                     ["decode", irn, out, "--temperature", "1", "-m", tiny_weights[2]]):
            subprocess.run([sys.executable, "-m", "irncodec.cli", *map(str, args)], check=True)
        outputs.append((irn.read_bytes(), Image.open(out).tobytes()))
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("suffix", [".webp", ".png", ".tiff", ".bmp"])
def test_decoded_images_are_written_losslessly(runner, png, tmp_path, tiny_weights, suffix):
    import irncodec

    irn, out = tmp_path / "a.irn", tmp_path / f"out{suffix}"
    run(runner, "encode", png, irn, "-m", tiny_weights[2])
    result = run(runner, "decode", irn, out, "-m", tiny_weights[2])
    assert result.exit_code == 0, result.output
    assert Image.open(out).convert("RGB").tobytes() == irncodec.decode(irn, model=tiny_weights[2]).tobytes()
