"""ICC profile and EXIF data from the input to the decoded image; frames; no silent recompression."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageCms

import irncodec
from irncodec import container, imageio, metadata, viewable
from irncodec.cli import main
from irncodec.container import Metadata
from irncodec.errors import FormatError, ImageError

from .conftest import photo_like

ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
CORPUS = Path(__file__).resolve().parent / "conformance"
CORPUS_V4 = CORPUS / "v4-sain-x2-jpeg-small-jpeg75-icc-exif-RGB-41x27.irn"
CORPUS_V2 = CORPUS / "v2-sain-x2-jpeg-small-jpeg75-RGB-41x27.irn"


def exif_bytes(orientation: int | None = 6, **tags) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Test camera"
    if orientation is not None:
        exif[0x0112] = orientation
    exif[0x8769] = {0x9003: "2024:05:06 07:08:09"}
    for tag, value in tags.items():
        exif[int(tag[1:], 16)] = value
    return exif.tobytes()


def orientation_of(info_exif: bytes) -> int | None:
    exif = Image.Exif()
    exif.load(info_exif)
    return exif.get(0x0112)


def png_bytes(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", **options)
    return out.getvalue()


@pytest.fixture
def upright():
    return photo_like(40, 24, seed=5)  # wider than tall


@pytest.fixture
def turned(upright):
    """A PNG whose pixels are ``upright`` turned a quarter anticlockwise, marked Orientation 6
    (turn clockwise to show), with an ICC profile: viewers show ``upright``."""
    return png_bytes(upright.transpose(Image.Transpose.ROTATE_90), icc_profile=ICC, exif=exif_bytes(6))


# --- EXIF orientation -----------------------------------------------------------------------

@pytest.mark.parametrize("order", ["<", ">"])
def test_reset_orientation_changes_only_the_tag(order):
    for kind, fmt in ((3, "H"), (4, "I")):
        value = struct.pack(order + fmt, 6).ljust(4, b"\x00")
        entries = (struct.pack(order + "HHI", 0x010F, 2, 4) + b"abc\x00"
                   + struct.pack(order + "HHI", 0x0112, kind, 1) + value)
        tiff = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "I", 8)
        tiff += struct.pack(order + "H", 2) + entries + bytes(4) + b"maker notes"
        reset = metadata.reset_orientation(tiff)
        assert len(reset) == len(tiff) and orientation_of(b"Exif\x00\x00" + reset) == 1
        changed = [i for i in range(len(tiff)) if tiff[i] != reset[i]]
        assert len(changed) == 1  # the value's low byte, nothing else
    assert metadata.reset_orientation(b"II*\x00\xff\xff\x00\x00") == b"II*\x00\xff\xff\x00\x00"  # cannot follow
    no_tag = exif_bytes(None)[6:]
    assert metadata.reset_orientation(no_tag) == no_tag


def test_a_file_is_read_upright_with_its_metadata(upright, turned):
    img = imageio.load_image(io.BytesIO(turned))
    assert img.size == upright.size and img.tobytes() == upright.tobytes()
    assert img.info["icc_profile"] == ICC
    assert orientation_of(img.info["exif"]) == 1
    exif = Image.Exif()
    exif.load(img.info["exif"])
    assert exif[0x010F] == "Test camera" and exif.get_ifd(0x8769)[0x9003] == "2024:05:06 07:08:09"


def test_a_jpeg_with_orientation_is_read_upright(tmp_path):
    path = tmp_path / "camera.jpg"
    photo_like(24, 40).save(path, quality=95, exif=exif_bytes(8), icc_profile=ICC)
    img = imageio.load_image(path)
    assert img.size == (40, 24) and orientation_of(img.info["exif"]) == 1 and img.info["icc_profile"] == ICC
    raw = Image.open(path).info["exif"]
    assert len(img.info["exif"]) == len(raw)  # the same block, but for the orientation's value


def test_metadata_round_trip(tiny_weights, upright, turned):
    """Orientation 6 on a non-square image: stored and decoded upright (the rotated size), pixels
    those of encoding the upright image, ICC profile and EXIF (Orientation 1) restored."""
    data = irncodec.encode(turned, model=tiny_weights[2])
    f = container.unpack(data)
    assert data[4] == 4 and f.header.has_metadata and (f.header.width, f.header.height) == (40, 24)
    assert f.metadata.icc_profile == ICC and f.metadata.exif.startswith((b"II*\x00", b"MM\x00*"))
    plain = irncodec.encode(upright, model=tiny_weights[2])
    assert container.unpack(plain).payload == f.payload and plain[4] == 2
    decoded = irncodec.decode(data, model=tiny_weights[2])
    assert decoded.size == (40, 24)
    assert decoded.tobytes() == irncodec.decode(plain, model=tiny_weights[2]).tobytes()
    assert decoded.info["icc_profile"] == ICC and orientation_of(decoded.info["exif"]) == 1
    assert "icc_profile" not in irncodec.decode(plain, model=tiny_weights[2]).info
    lr = irncodec.decode_lr(data)
    assert lr.size == (20, 12) and lr.info["icc_profile"] == ICC


def test_strip_gives_the_bytes_of_an_image_without_metadata(tiny_weights, upright, turned):
    stripped = irncodec.encode(turned, model=tiny_weights[2], keep_metadata=False)
    assert stripped == irncodec.encode(png_bytes(upright), model=tiny_weights[2])
    assert stripped[4] == 2 and stripped[5] == 0 and not container.unpack(stripped).metadata


def test_a_pil_image_is_taken_as_it_is(tiny_weights, upright):
    """Pixels and info as given: its EXIF orientation stays, so the decoded image with its
    EXIF shows as the input did."""
    img = upright.copy()
    img.info.update(icc_profile=ICC, exif=exif_bytes(6))
    f = container.unpack(irncodec.encode(img, model=tiny_weights[2]))
    assert (f.header.width, f.header.height) == (40, 24) and f.metadata.icc_profile == ICC
    assert orientation_of(b"Exif\x00\x00" + f.metadata.exif) == 6


def test_blocks_no_reader_could_use_are_left_out_and_oversized_ones_refused(tiny_weights, upright):
    img = upright.copy()
    img.info.update(icc_profile=b"not a profile", exif=b"not exif")
    assert not metadata.from_image(img)
    assert irncodec.encode(img, model=tiny_weights[2])[4] == 2
    img.info["icc_profile"] = ICC + bytes(container.MAX_METADATA_CHUNK)
    with pytest.raises(ImageError, match=r"more than the 4194304 an \.irn file holds.*--strip"):
        irncodec.encode(img, model=tiny_weights[2])
    assert irncodec.encode(img, model=tiny_weights[2], keep_metadata=False)[4] == 2


def test_a_target_size_counts_the_metadata(turned):
    result = irncodec.encode(turned, target_bpp=12.0, codec="png", scale=4)
    f = container.unpack(result)
    assert f.metadata.icc_profile == ICC and len(result) * 8 / (40 * 24) <= 12.0


def test_corrupt_metadata_in_a_file_is_a_format_error(tiny_weights, turned):
    data = bytearray(irncodec.encode(turned, model=tiny_weights[2]))
    data[-5] ^= 0x01  # inside the EXIF chunk
    with pytest.raises(FormatError, match="payload checksum mismatch"):
        irncodec.decode(bytes(data), model=tiny_weights[2])


# --- viewable files and the Pillow plugin -------------------------------------------------

@pytest.mark.parametrize("codec", ["jpeg", "webp", "png"])
def test_viewable_files_carry_the_metadata(tiny_weights, turned, codec):
    data = irncodec.encode(turned, model=tiny_weights[2], codec=codec)
    wrapped = viewable.wrap(data)
    assert viewable.unwrap(wrapped) == data
    assert irncodec.decode(wrapped, model=tiny_weights[2]).info["icc_profile"] == ICC


def test_pillow_opens_the_metadata():
    with Image.open(CORPUS_V4) as im:
        assert im.info["irn_version"] == 4 and "exif" in im.info
        assert im.info["icc_profile"] == container.read(CORPUS_V4).metadata.icc_profile
        assert orientation_of(im.info["exif"]) == 1 and im.getexif()[0x0112] == 1
        assert im.convert("RGB").size == (41, 27)
    with Image.open(CORPUS_V2) as im:
        assert "icc_profile" not in im.info and "exif" not in im.info


def test_pillow_saves_with_or_without_metadata(tiny_weights, upright):
    img = upright.copy()
    img.info["icc_profile"] = ICC
    for keep, version in ((True, 4), (False, 2)):
        out = io.BytesIO()
        img.save(out, format="IRN", model=tiny_weights[2], keep_metadata=keep)
        assert out.getvalue()[4] == version


# --- frames ----------------------------------------------------------------------------------

@pytest.fixture
def gif(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (20, 16), color) for color in ((250, 0, 0), (0, 250, 0), (0, 0, 250))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    return path


def test_several_frames_need_a_choice(gif, tiny_weights):
    with pytest.raises(ImageError, match=r"anim.gif has 3 frames .*--frame N \(frame=N in Python\), 0 .* to 2"):
        imageio.load_image(gif)
    assert imageio.load_image(gif, 1).convert("RGB").getpixel((3, 3)) == (0, 250, 0)
    assert imageio.load_image(gif, 0).convert("RGB").getpixel((3, 3)) == (250, 0, 0)
    for bad in (3, -1, True):
        with pytest.raises(ImageError, match="has no frame"):
            imageio.load_image(gif, bad)
    with pytest.raises(ImageError, match="3 frames"):
        irncodec.encode(gif, model=tiny_weights[2])
    chosen = irncodec.decode(irncodec.encode(gif, model=tiny_weights[2], frame=2), model=tiny_weights[2])
    assert np.asarray(chosen)[..., 2].mean() > np.asarray(chosen)[..., 0].mean()


def test_a_single_image_takes_frame_0_only(tmp_path, tiny_weights):
    path = tmp_path / "one.png"
    photo_like(8, 8).save(path)
    assert imageio.load_image(path, 0).size == (8, 8)
    with pytest.raises(ImageError, match="has no frame 1: it has one frame, 0"):
        imageio.load_image(path, 1)
    with pytest.raises(ImageError, match="there is no frame 1"):
        irncodec.encode(np.zeros((4, 4, 3), np.uint8), model=tiny_weights[2], frame=1)


def test_multi_page_tiff_and_animated_png_and_webp(tmp_path):
    pages = [photo_like(12, 10, seed=i) for i in range(2)]
    for suffix, options in ((".tif", {}), (".png", {}), (".webp", {"lossless": True})):
        path = tmp_path / f"pages{suffix}"
        pages[0].save(path, save_all=True, append_images=pages[1:], **options)
        with pytest.raises(ImageError, match=r"has 2 (pages|frames)"):
            imageio.load_image(path)
        assert imageio.load_image(path, 1).convert("RGB").tobytes() == pages[1].tobytes()


def test_a_camera_jpeg_with_previews_is_one_image(tmp_path):
    """A JPEG with Multi-Picture data whose other pictures are previews (Pillow writes them as
    'Undefined', like phones' gain maps) is its primary picture; stereo views are frames."""
    path = tmp_path / "camera.jpg"
    photo_like(32, 24).save(path, format="MPO", save_all=True, append_images=[photo_like(16, 12)])
    with Image.open(path) as im:
        assert im.format == "MPO" and im.n_frames == 2 and imageio.frame_count(im) == 1
        im.mpinfo[0xB002][1]["Attribute"]["MPType"] = "Multi-Frame Image: (Disparity)"
        assert imageio.frame_count(im) == 2
    assert imageio.load_image(path).size == (32, 24) and imageio.load_image(path, 1).size == (16, 12)


def test_a_multi_frame_pil_image_needs_a_choice_and_pillow_saves_the_current_frame(gif, tiny_weights):
    with Image.open(gif) as im:
        with pytest.raises(ImageError, match="the image has 3 frames"):
            irncodec.encode(im, model=tiny_weights[2])
        im.seek(1)
        out = io.BytesIO()
        im.save(out, format="IRN", model=tiny_weights[2], codec="png")
        assert im.tell() == 1
        assert out.getvalue() == irncodec.encode(im, model=tiny_weights[2], codec="png", frame=1)
        assert im.tell() == 1  # encode leaves the image at its frame
        first = irncodec.decode(irncodec.encode(im, model=tiny_weights[2], codec="png", frame=0),
                                model=tiny_weights[2])
        assert im.tell() == 1 and np.asarray(first)[..., 0].mean() > np.asarray(first)[..., 1].mean()


# --- the command line ------------------------------------------------------------------------

def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def files(tmp_path, tiny_weights, turned):
    src = tmp_path / "in.png"
    src.write_bytes(turned)
    irn = tmp_path / "a.irn"
    assert run("encode", src, irn, "-m", tiny_weights[2]).exit_code == 0
    return src, irn


def test_cli_keeps_shows_and_strips_metadata(files, tmp_path, tiny_weights):
    src, irn = files
    info = run("info", irn)
    assert "format version: 4\n" in info.output
    assert f"metadata:       ICC profile {len(ICC)} bytes, EXIF " in info.output
    stripped = tmp_path / "s.irn"
    assert run("encode", src, stripped, "-m", tiny_weights[2], "--strip").exit_code == 0
    info = run("info", stripped)
    assert "format version: 2\n" in info.output and "metadata:       none\n" in info.output


@pytest.mark.parametrize("suffix,args", [(".png", []), (".tiff", []), (".webp", []), (".webp", ["-Q", "80"]),
                                         (".jpg", ["--output-quality", "90"])])
def test_cli_decode_writes_the_metadata(files, tmp_path, tiny_weights, suffix, args):
    _, irn = files
    out = tmp_path / f"out{suffix}"
    result = run("decode", irn, out, "-m", tiny_weights[2], *args)
    assert result.exit_code == 0 and result.output == "", result.output
    with Image.open(out) as im:
        assert im.size == (40, 24) and im.info["icc_profile"] == ICC
        assert im.getexif()[0x0112] == 1 and im.getexif()[0x010F] == "Test camera"


def test_cli_says_what_an_output_format_cannot_hold(files, tmp_path, tiny_weights):
    _, irn = files
    result = run("decode", irn, tmp_path / "out.bmp", "-m", tiny_weights[2])
    assert result.exit_code == 0
    assert "warning: out.bmp is written without the ICC profile and the EXIF data" in result.output


def test_cli_refuses_a_lossy_output_without_a_quality(files, tmp_path, tiny_weights):
    _, irn = files
    out = tmp_path / "out.jpg"
    result = run("decode", irn, out, "-m", tiny_weights[2])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "JPEG is a lossy format" in result.output and "--output-quality Q" in result.output
    assert not out.exists()
    sizes = []
    for quality in ("95", "20"):
        assert run("decode", irn, out, "-m", tiny_weights[2], "-Q", quality, "-f").exit_code == 0
        assert Image.open(out).format == "JPEG"
        sizes.append(out.stat().st_size)
    assert sizes[1] < sizes[0]  # the quality asked is the quality written
    result = run("decode", irn, tmp_path / "out.png", "-m", tiny_weights[2], "-Q", "90")
    assert result.exit_code == 1 and "'.png' files are lossless" in result.output
    assert not (tmp_path / "out.png").exists()
    result = run("decode", irn, out, "-m", tiny_weights[2], "-Q", "0")
    assert result.exit_code == 2 and "1<=x<=100" in result.output


def test_cli_webp_is_lossless_unless_a_quality_is_given(files, tmp_path, tiny_weights):
    _, irn = files
    exact, lossy = tmp_path / "exact.webp", tmp_path / "lossy.webp"
    assert run("decode", irn, exact, "-m", tiny_weights[2]).exit_code == 0
    assert run("decode", irn, lossy, "-m", tiny_weights[2], "-Q", "30").exit_code == 0
    decoded = irncodec.decode(irn, model=tiny_weights[2])
    assert Image.open(exact).convert("RGB").tobytes() == decoded.tobytes()
    assert Image.open(lossy).convert("RGB").tobytes() != decoded.tobytes()


def test_cli_lr_only_and_quality(files, tmp_path, tiny_weights):
    src, _ = files
    jpeg_irn = tmp_path / "j.irn"
    run("encode", src, jpeg_irn, "-m", tiny_weights[2], "-c", "jpeg")
    thumb = tmp_path / "thumb.jpg"
    result = run("decode", jpeg_irn, thumb, "--lr-only")
    assert result.exit_code == 0 and "written as it is, without the file's metadata" in result.output
    assert thumb.read_bytes() == container.read(jpeg_irn).payload
    result = run("decode", jpeg_irn, thumb, "--lr-only", "-Q", "50", "-f")
    assert result.exit_code == 1 and "drop --output-quality" in result.output
    png_irn = tmp_path / "p.irn"
    run("encode", src, png_irn, "-m", tiny_weights[2], "-c", "png")
    result = run("decode", png_irn, tmp_path / "lr.jpg", "--lr-only")
    assert result.exit_code == 1 and "lossy" in result.output and not (tmp_path / "lr.jpg").exists()
    assert run("decode", png_irn, tmp_path / "lr.jpg", "--lr-only", "-Q", "90").exit_code == 0
    assert Image.open(tmp_path / "lr.jpg").info["icc_profile"] == ICC


def test_cli_frames(gif, tmp_path, tiny_weights):
    out = tmp_path / "a.irn"
    result = run("encode", gif, out, "-m", tiny_weights[2])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "has 3 frames" in result.output and "--frame N" in result.output and not out.exists()
    result = run("encode", gif, out, "-m", tiny_weights[2], "--frame", "5")
    assert result.exit_code == 1 and "has no frame 5" in result.output and not out.exists()
    assert run("encode", gif, out, "-m", tiny_weights[2], "--frame", "1").exit_code == 0
    assert container.read(out).header.width == 20
    assert run("encode", gif, out, "-m", tiny_weights[2], "--frame", "-1").exit_code == 2


def test_cli_help_names_the_options():
    assert "--strip" in run("encode", "--help").output and "--frame" in run("encode", "--help").output
    assert "--output-quality" in run("decode", "--help").output


def test_metadata_save_keywords():
    md = Metadata(icc_profile=ICC, exif=b"II*\x00" + bytes(4))
    assert metadata.save_keywords("PNG", md) == ({"icc_profile": ICC, "exif": b"Exif\x00\x00II*\x00" + bytes(4)}, [])
    assert metadata.save_keywords("BMP", md) == ({}, ["ICC profile", "EXIF data"])
    big = Metadata(exif=b"II*\x00" + bytes(70000))
    assert metadata.save_keywords("JPEG", big) == ({}, ["EXIF data"])
    assert metadata.save_keywords("WEBP", Metadata()) == ({}, [])
