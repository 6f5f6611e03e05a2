"""The Pillow plugin: .irn files open and save through PIL.Image after ``import irncodec``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

import irncodec
from irncodec import codec, container
from irncodec.errors import CodecError, FormatError

from .conftest import photo_like

CORPUS = Path(__file__).resolve().parent / "conformance"
RGBA_FILE = CORPUS / "v2-sain-x2-jpeg-small-jpeg75-RGBA-37x23.irn"


def test_open_reads_the_header_only_and_decodes_on_load(monkeypatch):
    calls = []
    real_decode = codec.decode
    monkeypatch.setattr(codec, "decode", lambda data, *a, **k: calls.append(1) or real_decode(data, *a, **k))
    im = Image.open(RGBA_FILE)
    assert (im.format, im.size, im.mode) == ("IRN", (37, 23), "RGBA") and not calls
    assert im.info["irn_model"] == "sain-x2-jpeg-small" and im.info["irn_codec"] == "jpeg"
    assert im.get_format_mimetype() == "image/x-irn"
    im.load()
    assert calls == [1] and im.fp is None  # the file is closed once decoded
    im.load()
    assert calls == [1]
    assert im.tobytes() == real_decode(RGBA_FILE).tobytes()


def test_open_from_a_file_object_and_operations_load_the_pixels():
    with RGBA_FILE.open("rb") as f:
        im = Image.open(f)
        grey = im.convert("L")
    assert grey.size == (37, 23)
    assert grey.tobytes() == irncodec.decode(RGBA_FILE).convert("L").tobytes()


def test_save_takes_encode_options(tmp_path, tiny_weights):
    src = photo_like(40, 30)
    buf = io.BytesIO()
    src.save(buf, format="IRN", quality=60, codec="webp", model=tiny_weights[2])
    assert buf.getvalue() == irncodec.encode(src, quality=60, codec="webp", model=tiny_weights[2])
    path = tmp_path / "x.irn"
    src.save(path, quality=70, model=tiny_weights[2])  # the format from the extension
    h = container.read(path).header
    assert (h.codec, h.quality, h.width, h.height) == ("jpeg", 70, 40, 30)
    with pytest.raises(CodecError, match="does not take optimize"):
        src.save(tmp_path / "y.irn", optimize=True)
    with pytest.raises(CodecError, match="quality must be"):
        src.save(tmp_path / "z.irn", quality=101, model=tiny_weights[2])


def test_a_damaged_file_is_one_clear_error_and_other_formats_are_untouched(tmp_path):
    bad = tmp_path / "bad.irn"
    bad.write_bytes(RGBA_FILE.read_bytes()[:20])
    with pytest.raises(FormatError, match="truncated"):
        Image.open(bad)
    png = tmp_path / "x.png"
    photo_like(8, 8).save(png)
    assert Image.open(png).format == "PNG"
