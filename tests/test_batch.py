"""Several files in one call, '-' for stdin/stdout, -f/--force, and tile progress."""

import io
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from irncodec import batch, progress, tiling, zoo
from irncodec.batch import Job, UsageError, plan
from irncodec.cli import main
from irncodec.errors import OutputError

from .conftest import photo_like


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


# --- the plan: which file goes where -----------------------------------------------------

def test_two_paths_without_o_are_input_and_output():
    assert plan(["a.png", "b.irn"], None, ".irn") == [Job("a.png", "b.irn")]


def test_o_folder_names_each_output_after_its_input(tmp_path):
    jobs = plan(["x/a.png", "y/b.jpeg"], str(tmp_path), ".irn")
    assert jobs == [Job("x/a.png", str(tmp_path / "a.irn")), Job("y/b.jpeg", str(tmp_path / "b.irn"))]
    assert plan(["a.png"], "new/", ".png") == [Job("a.png", os.path.join("new/", "a.png"))]


def test_o_file_takes_one_input(tmp_path):
    assert plan(["a.png"], "out.irn", ".irn") == [Job("a.png", "out.irn")]
    assert plan(["-"], "-", ".irn") == [Job("-", "-")]
    with pytest.raises(UsageError, match="2 inputs need -o FOLDER"):
        plan(["a.png", "b.png"], "out.irn", ".irn")


@pytest.mark.parametrize("paths, output, message", [
    (["a.png"], None, "give an OUTPUT"),
    (["a.png", "b.png", "c.png"], None, "3 inputs: give the folder"),
    (["-", "-"], "dir/", "read only once"),
    (["a.png", "-"], "dir/", "no name for its output"),
    (["x/a.png", "y/a.png"], "dir/", "'x/a.png' and 'y/a.png' would both be written to"),
])
def test_impossible_plans_are_usage_errors(paths, output, message):
    with pytest.raises(UsageError, match=message):
        plan(paths, output, ".irn")


def test_binary_output_is_refused_on_a_terminal(monkeypatch):
    class Terminal(io.BytesIO):
        buffer = io.BytesIO()

        def isatty(self):
            return True

    monkeypatch.setattr(batch.sys, "stdout", Terminal())
    with pytest.raises(OutputError, match="terminal"):
        batch.stdout_stream()
    monkeypatch.setattr(batch.sys, "stdin", Terminal())
    with pytest.raises(OutputError, match="terminal"):
        batch.stdin_stream()


# --- the command line ----------------------------------------------------------------------

@pytest.fixture
def pngs(tmp_path):
    paths = []
    for i, (w, h) in enumerate([(33, 21), (20, 30), (16, 16)]):
        path = tmp_path / f"in{i}.png"
        photo_like(w, h, seed=i).save(path)
        paths.append(path)
    return paths


def test_batch_encode_and_decode_into_folders(pngs, tmp_path, tiny_weights):
    out = tmp_path / "coded"
    result = run("encode", *pngs, "-o", f"{out}/", "-m", tiny_weights[2], "-v")
    assert result.exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["in0.irn", "in1.irn", "in2.irn"]
    total = sum(p.stat().st_size for p in out.iterdir())
    assert f"encoded 3 of 3 files: 0.00 MP, {total} bytes" in result.output
    for png in pngs:  # the same bytes as one file at a time
        single = tmp_path / f"{png.stem}-single.irn"
        assert run("encode", png, single, "-m", tiny_weights[2]).exit_code == 0
        assert single.read_bytes() == (out / f"{png.stem}.irn").read_bytes()
    decoded = tmp_path / "decoded"
    result = run("decode", *sorted(out.iterdir()), "-o", f"{decoded}/", "--suffix", ".webp",
                 "-m", tiny_weights[2])
    assert result.exit_code == 0 and result.output == ""  # quiet without -v off a terminal
    for png in pngs:
        assert Image.open(decoded / f"{png.stem}.webp").size == Image.open(png).size


def test_existing_outputs_need_force_and_nothing_starts_without_it(pngs, tmp_path, tiny_weights):
    out = tmp_path / "coded"
    out.mkdir()
    (out / "in1.irn").write_bytes(b"keep me")
    result = run("encode", *pngs, "-o", out, "-m", tiny_weights[2])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "in1.irn: it exists (use -f/--force" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["in1.irn"]  # checked before any work
    assert (out / "in1.irn").read_bytes() == b"keep me"
    assert run("encode", *pngs, "-o", out, "-m", tiny_weights[2], "--force").exit_code == 0
    assert (out / "in1.irn").read_bytes()[:4] == b"\x89IRN"
    single = run("decode", out / "in0.irn", pngs[1], "-m", tiny_weights[2])
    assert single.exit_code == 1 and "exists" in single.output


def test_one_bad_input_does_not_stop_the_others(pngs, tmp_path, tiny_weights):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    out = tmp_path / "coded"
    result = run("encode", pngs[0], bad, pngs[1], "-o", f"{out}/", "-m", tiny_weights[2], "-v")
    assert result.exit_code == 1
    assert f"irncodec: error: {bad}: cannot identify image file" in result.output
    assert "encoded 2 of 3 files" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["in0.irn", "in1.irn"]


def test_stdin_to_stdout_round_trip(pngs, tiny_weights):
    source = pngs[0].read_bytes()
    coded = run("encode", "-", "-", "-m", tiny_weights[2])
    assert coded.exit_code == 1 and "terminal" not in coded.output  # nothing piped in: no image
    coded = CliRunner().invoke(main, ["encode", "-", "-", "-m", str(tiny_weights[2])], input=source)
    assert coded.exit_code == 0 and coded.stdout_bytes[:4] == b"\x89IRN"
    decoded = CliRunner().invoke(main, ["decode", "-", "-o", "-", "-m", str(tiny_weights[2])],
                                 input=coded.stdout_bytes)
    assert decoded.exit_code == 0
    image = Image.open(io.BytesIO(decoded.stdout_bytes))
    assert image.format == "PNG" and image.size == (33, 21)
    viewable = CliRunner().invoke(main, ["encode", "-", "-o", "-", "--suffix", ".jpg", "-m",
                                         str(tiny_weights[2])], input=source)
    assert viewable.exit_code == 0 and Image.open(io.BytesIO(viewable.stdout_bytes)).format == "JPEG"


@pytest.mark.parametrize("args, message", [
    (["encode", "a.png"], "give an OUTPUT"),
    (["encode", "a.png", "b.png", "c.png"], "3 inputs"),
    (["encode", "a.png", "-o", "x", "--suffix", "irn"], "not a file suffix"),
    (["decode", "a.irn", "b.irn", "-o", "x.png"], "need -o FOLDER"),
])
def test_usage_errors_exit_2(args, message):
    result = run(*args)
    assert result.exit_code == 2 and message in result.output


def test_decode_folder_refuses_an_unknown_suffix_before_work(pngs, tmp_path):
    result = run("decode", *pngs, "-o", f"{tmp_path / 'd'}/", "--suffix", ".xyz")
    assert result.exit_code == 1 and "use one of" in result.output
    assert not list((tmp_path / "d").iterdir())


# --- progress over the tiles of a large image ----------------------------------------------

def test_tiles_report_progress(tiny_weights):
    model = zoo.load_model(tiny_weights[2])
    pixels = np.asarray(photo_like(40, 24))  # LR 20x12: 3x2 tiles of 8
    calls = []
    with progress.reporting(lambda stage, done, total: calls.append((stage, done, total))):
        lr = tiling.downscale_tiled(model, pixels, tile=8, margin=2)
        tiling.upscale_tiled(model, lr, 0.0, 0, tile=8, margin=2)
    assert calls == [("downscale", i, 6) for i in range(1, 7)] + [("upscale", i, 6) for i in range(1, 7)]
    tiling.downscale_tiled(model, pixels, tile=8, margin=2)  # outside reporting: nothing reported
    assert len(calls) == 12


def test_large_image_shows_a_tile_bar_with_verbose(tmp_path, tiny_weights, monkeypatch):
    from irncodec import cli
    monkeypatch.setattr(cli, "_TILES_FOR_A_BAR", 2)
    monkeypatch.setattr(tiling, "TILE", 8)
    png = tmp_path / "big.png"
    photo_like(40, 24).save(png)
    result = run("encode", png, tmp_path / "big.irn", "-m", tiny_weights[2], "-v")
    assert result.exit_code == 0 and "downscale" in result.output and "tile" in result.output
    quiet = run("encode", png, tmp_path / "big2.irn", "-m", tiny_weights[2])
    assert quiet.exit_code == 0 and quiet.output == ""
    assert Path(tmp_path / "big2.irn").read_bytes() == Path(tmp_path / "big.irn").read_bytes()
