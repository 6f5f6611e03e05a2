"""The .irn container: round trips, and every kind of bad file is a FormatError."""

import contextlib
import io
import struct
import zlib
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from irncodec import container
from irncodec.container import MODE_IDS, Header, IrnFile, Metadata, pack, peek_header, read, unpack
from irncodec.errors import ConfigError, FormatError
from irncodec.lr_codecs import codec_ids

FP = bytes.fromhex("0123456789abcdef")


def make_header(**changes) -> Header:
    fields = dict(model="irn-x2-small", scale=2, width=33, height=20, mode="RGB",
                  pad_x=1, pad_y=0, codec="jpeg", quality=90, fingerprint=FP)
    fields.update(changes)
    return Header(**fields)


def make_file(alpha: bytes = b"", **changes) -> IrnFile:
    return IrnFile(make_header(**changes), b"\xff\xd8 LR payload bytes \xff\xd9", alpha)


VALID = pack(make_file(alpha=b"\x89PNG alpha", mode="RGBA"))
VALID_V1 = pack(make_file(alpha=b"\x89PNG alpha", mode="RGBA", fingerprint=None))


def raw(payload: bytes = b"payload", alpha: bytes = b"", **fields) -> bytes:
    """Bytes of a file built field by field, with correct CRCs but no validation
    (version 2 with an 8-byte fingerprint unless ``version`` says otherwise; for
    version 1 no fingerprint is written)."""
    v = dict(magic=container.MAGIC, version=2, flags=1 if alpha else 0, name=b"m", scale=2,
             width=4, height=4, mode=2, pad_x=0, pad_y=0, codec=1, quality=90,
             payload_len=len(payload), alpha_len=len(alpha), fingerprint=FP)
    v.update(fields)
    head = struct.pack("<4sBBB", v["magic"], v["version"], v["flags"], len(v["name"])) + v["name"]
    head += struct.pack("<BIIBBBBBII", v["scale"], v["width"], v["height"], v["mode"], v["pad_x"],
                        v["pad_y"], v["codec"], v["quality"], v["payload_len"], v["alpha_len"])
    if v["version"] != 1:
        head += v["fingerprint"]
    return head + struct.pack("<II", zlib.crc32(head), zlib.crc32(payload + alpha)) + payload + alpha


def rejects(data: bytes, match: str = "", **kwargs) -> None:
    with pytest.raises(FormatError, match=match):
        unpack(data, **kwargs)


# --- round trips -----------------------------------------------------------------------------

@pytest.mark.parametrize("codec", list(codec_ids()))
@pytest.mark.parametrize("mode", list(MODE_IDS))
@pytest.mark.parametrize("scale,size,pad", [(2, (32, 20), (0, 0)), (2, (1, 1), (1, 1)),
                                            (4, (33, 17), (3, 3)), (4, (3, 64), (1, 0))])
def test_round_trip(codec, mode, scale, size, pad):
    alpha = b"\x89PNG alpha" if mode in ("LA", "RGBA") else b""
    f = make_file(alpha, codec=codec, mode=mode, scale=scale, width=size[0], height=size[1],
                  pad_x=pad[0], pad_y=pad[1], quality=0 if codec == "png" else 75)
    data = pack(f)
    assert unpack(data) == f
    assert unpack(bytearray(data)) == f and unpack(memoryview(data)) == f
    assert peek_header(data) == f.header
    assert f.has_alpha == bool(alpha)
    assert f.header.lr_width * scale == size[0] + pad[0]
    assert f.header.lr_height * scale == size[1] + pad[1]


def test_layout_matches_spec():
    f = make_file(model="abc")
    data = pack(f)
    n = 3
    assert container.FORMAT_VERSION == 5 and f.header.version == 2
    assert data[:4] == b"\x89IRN" and data[4] == 2 and data[5] == 0
    assert data[6] == n and data[7:7 + n] == b"abc"
    assert struct.unpack_from("<II", data, 8 + n) == (33, 20)
    assert data[29 + n:37 + n] == FP
    assert struct.unpack_from("<I", data, 37 + n)[0] == zlib.crc32(data[:37 + n])
    assert struct.unpack_from("<I", data, 41 + n)[0] == zlib.crc32(f.payload)
    assert data[45 + n:] == f.payload
    assert len(data) == 45 + n + len(f.payload) == f.size


def test_version_1_layout_is_still_read_and_written():
    """A header without a fingerprint is version 1: 8 bytes shorter, as docs/format.md's v1 table."""
    f = make_file(model="abc", fingerprint=None)
    data = pack(f)
    n = 3
    assert data[4] == 1 and f.header.version == 1
    assert struct.unpack_from("<I", data, 29 + n)[0] == zlib.crc32(data[:29 + n])
    assert data[37 + n:] == f.payload
    assert len(data) == 37 + n + len(f.payload) == f.size
    assert unpack(data) == f and unpack(data).header.fingerprint is None
    assert unpack(raw(version=1)).header.fingerprint is None
    assert unpack(raw(version=2)).header.fingerprint == FP


def test_version_3_is_written_only_for_a_payload_that_needs_it():
    """Version 3 has version 2's header; a file is version 3 only when its codec says the
    payload needs it (docs/format.md), and reading one keeps it version 3."""
    v2 = pack(make_file(model="abc"))
    v3 = pack(make_file(model="abc", payload_version=3))
    assert v3[4] == 3 and v2[4] == 2
    crc_at = 37 + 3
    assert v3[5:crc_at] == v2[5:crc_at] and v3[45 + 3:] == v2[45 + 3:]
    assert struct.unpack_from("<I", v3, crc_at)[0] == zlib.crc32(v3[:crc_at])
    f = unpack(v3)
    assert f.header.version == 3 and f.header.payload_version == 3 and pack(f) == v3
    assert unpack(raw(version=3)).header.version == 3
    assert unpack(v2).header.payload_version == 1
    with pytest.raises(ValueError, match="version-3 file needs the weights fingerprint"):
        pack(make_file(fingerprint=None, payload_version=3))
    for bad in (0, 4, "3", None):
        with pytest.raises(ValueError, match="payload version must be one of 1, 2, 3"):
            pack(make_file(payload_version=bad))


def test_fingerprint_must_be_8_bytes():
    for bad in (b"", b"1234567", FP + b"x", "0123456789abcdef"):
        with pytest.raises(ValueError, match="fingerprint must be 8 bytes"):
            pack(make_file(fingerprint=bad))


def test_alpha_sets_flag_and_follows_payload():
    data = pack(make_file(alpha=b"ALPHA", mode="LA"))
    assert data[5] == 1 and data.endswith(b"\xd9ALPHA")


def test_bits_per_pixel():
    f = make_file(alpha=b"x" * 11, mode="RGBA", width=40, height=20, pad_x=0)
    assert f.size == len(pack(f))
    assert f.bits_per_pixel() == pytest.approx(len(pack(f)) * 8 / 800)
    assert make_file(width=2, height=4, pad_x=0).bits_per_pixel() == pytest.approx(
        (45 + 12 + 22) * 8 / 8)
    assert make_file(width=2, height=4, pad_x=0, fingerprint=None).bits_per_pixel() == pytest.approx(
        (37 + 12 + 22) * 8 / 8)


# --- reading files ---------------------------------------------------------------------------

def test_read_path_and_file_object(tmp_path):
    path = tmp_path / "a.irn"
    path.write_bytes(VALID)
    assert read(path) == unpack(VALID)
    assert read(str(path)) == unpack(VALID)
    with open(path, "rb") as fh:
        assert read(fh) == unpack(VALID)
    assert read(io.BytesIO(VALID)) == unpack(VALID)
    assert peek_header(path) == unpack(VALID).header
    assert unpack(bytearray(VALID)) == unpack(memoryview(VALID)) == unpack(VALID)
    with pytest.raises(TypeError) as info:
        unpack(VALID.decode("latin-1"))  # type: ignore[arg-type]
    assert str(info.value) == "expected bytes, got str"


def test_read_missing_path_and_directory(tmp_path):
    with pytest.raises(FormatError, match=r"cannot read .*missing\.irn"):
        read(tmp_path / "missing.irn")
    with pytest.raises(FormatError, match="cannot read"):
        read(tmp_path)


def test_read_reports_trailing_bytes_of_a_file(tmp_path):
    path = tmp_path / "a.irn"
    path.write_bytes(VALID + b"junk")
    with pytest.raises(FormatError, match="4 unexpected trailing bytes"):
        read(path)


def test_reads_in_chunks_count_every_byte(monkeypatch):
    """Big files are read in chunks: the body and the trailing bytes are counted over many."""
    whole = unpack(VALID)
    monkeypatch.setattr(container, "_READ_CHUNK", 3)
    assert unpack(VALID) == whole
    with pytest.raises(FormatError, match=r"^10 unexpected trailing bytes after"):
        unpack(VALID + b"0123456789")
    assert container.read_upto(io.BytesIO(b"0123456789"), 7) == b"0123456"


# --- bad files -------------------------------------------------------------------------------

@pytest.mark.parametrize("valid", [VALID, VALID_V1], ids=["v2", "v1"])
def test_every_truncation_is_rejected(valid):
    for length in range(len(valid)):
        with pytest.raises(FormatError):
            unpack(valid[:length])


@pytest.mark.parametrize("valid", [VALID, VALID_V1], ids=["v2", "v1"])
def test_every_single_byte_change_is_rejected(valid):
    for i in range(len(valid)):
        data = bytearray(valid)
        data[i] ^= 0x5A
        with pytest.raises(FormatError):
            unpack(bytes(data))


def test_bad_magic():
    rejects(b"\x89PNG\r\n\x1a\n", "bad magic")


def test_unknown_version():
    rejects(raw(version=6), r"unsupported \.irn format version 6 \(this irncodec reads versions 1, 2, 3, 4, 5\)")
    rejects(raw(version=255), "version 255")


def test_reserved_flag_bits():
    rejects(raw(flags=0x03, alpha=b"a", mode=4), "reserved flag bits 0x02")


def test_header_checksum_mismatch():
    data = bytearray(raw())
    data[8] ^= 1  # the scale byte: still a valid value, but the CRC no longer matches
    rejects(bytes(data), "^header checksum mismatch: file is corrupt$")


def test_payload_checksum_mismatch():
    data = bytearray(VALID)
    data[-15] ^= 0xFF
    rejects(bytes(data), "^payload checksum mismatch: file is corrupt$")
    data = bytearray(VALID)
    data[-1] ^= 0xFF  # in the alpha plane
    rejects(bytes(data), "payload checksum mismatch")


def test_trailing_bytes():
    rejects(VALID + b"\x00", "1 unexpected trailing bytes")
    rejects(VALID + VALID, f"{len(VALID)} unexpected trailing bytes")


def test_absurd_dimensions():
    rejects(raw(height=0), "invalid image size 4x0")
    rejects(raw(width=70000), "exceeds the maximum dimension of 65535")
    rejects(raw(width=2**32 - 1, height=2**32 - 1), "exceeds the maximum")


def test_max_pixels_argument():
    data = raw(width=100, height=100)
    assert unpack(data).header.width == 100
    rejects(data, "exceeds the limit of 9999 pixels", max_pixels=9999)
    assert unpack(data, max_pixels=10000).header.height == 100
    with pytest.raises(FormatError, match="limit of 9999"):
        read(io.BytesIO(data), max_pixels=9999)
    with pytest.raises(ValueError):
        unpack(data, max_pixels=0)


@pytest.mark.parametrize("value", [0, -5, True, 2.0, "100"])
def test_max_pixels_must_be_a_positive_integer(value):
    with pytest.raises(ValueError) as info:
        container.max_pixels_limit(value)
    assert str(info.value) == f"max_pixels must be a positive integer, got {value!r}"


def test_the_limits_themselves_are_allowed():
    """One pixel under a limit of one, and sides of exactly the maximum dimension."""
    assert unpack(raw(width=1, height=1, pad_x=1, pad_y=1), max_pixels=1).header.width == 1
    top = container.MAX_DIMENSION  # odd: one column or row of padding at x2
    for size in ({"width": top, "pad_x": 1}, {"height": top, "pad_y": 1}):
        assert container._header_problem(make_header(**size), 0, 2**40) is None


def test_max_pixels_env_var(monkeypatch):
    data = raw(width=100, height=100)
    monkeypatch.setenv("IRNCODEC_MAX_PIXELS", "5000")
    rejects(data, "limit of 5000 pixels")
    assert unpack(data, max_pixels=10000).header.width == 100  # the argument wins
    with pytest.raises(ValueError, match="limit of 5000"):
        pack(make_file(width=100, height=100, pad_x=0))
    monkeypatch.setenv("IRNCODEC_MAX_PIXELS", str(2**40))
    assert unpack(raw(width=40000, height=40000)).header.width == 40000
    monkeypatch.setenv("IRNCODEC_MAX_PIXELS", "1")  # the smallest limit
    assert container.max_pixels_limit() == 1
    for bad in ("lots", "0", "-3"):
        monkeypatch.setenv("IRNCODEC_MAX_PIXELS", bad)
        with pytest.raises(ConfigError) as info:
            unpack(data)
        assert str(info.value) == f"IRNCODEC_MAX_PIXELS must be a positive integer, got '{bad}'"


def test_bad_padding():
    rejects(raw(width=5, pad_x=0), "invalid padding pad_x=0")
    rejects(raw(width=4, pad_x=2), "invalid padding pad_x=2")
    rejects(raw(height=3, pad_y=3, scale=4), "invalid padding pad_y=3")
    rejects(raw(height=1, pad_y=5, scale=2), "invalid padding pad_y=5")


@pytest.mark.parametrize("data, message", [
    (b"", "not an .irn file (empty)"),
    (b"GIF89a" + VALID[6:], "not an .irn file (bad magic)"),
    (VALID[:5], "truncated .irn file: header needs at least 38 bytes, got 5"),
    (VALID[:12], "truncated .irn file: header needs 57 bytes, got 12"),  # 37 + 8 + 12-byte name
    (raw(version=0), "unsupported .irn format version 0 (this irncodec reads versions 1, 2, 3, 4, 5)"),
    (raw(name=b""), "invalid model name length 0 (must be 1..64)"),
    (raw(name=b"x" * 65), "invalid model name length 65 (must be 1..64)"),
    (raw(flags=0x80), "reserved flag bits 0x80 are set (file is corrupt or from a newer writer)"),
    (raw(name=b"bad name"), "invalid model name b'bad name': must be ASCII A-Z a-z 0-9 . _ -"),
    (raw(mode=0), "unknown image mode id 0"),
    (raw(codec=9), "unknown LR codec id 9"),
    (raw(flags=1), "alpha flag is set but the alpha length is 0"),
    (raw(alpha=b"a", mode=4, flags=0), "alpha flag is clear but the alpha length is 1"),
    (raw(scale=3), "unsupported scale 3 (supported: 2, 4)"),
    (raw(width=0), "invalid image size 0x4: width and height must be at least 1"),
    (raw(height=70000), "declared image size 4x70000 exceeds the maximum dimension of 65535"),
    (raw(width=40000, height=40000), "declared image size 40000x40000 exceeds the limit of 89478485 pixels "
                                     "(set IRNCODEC_MAX_PIXELS to raise it)"),
    (raw(width=5, pad_x=0), "invalid padding pad_x=0 for size 5 at scale 2: the padded size must be "
                            "the next multiple of 2"),
    (raw(quality=101), "invalid quality 101 (must be 0..100)"),
    (raw(alpha=b"a", mode=2), "an alpha plane is stored but the image mode RGB has no alpha"),
    (raw(payload=b""), "empty LR payload"),
    (raw(payload_len=2**30 + 1), "LR payload length 1073741825 exceeds the limit of 1073741824 bytes"),
    (raw(alpha=b"a", mode=4, alpha_len=2**30 + 1),
     "alpha plane length 1073741825 exceeds the limit of 1073741824 bytes"),
    (VALID[:-1], "truncated .irn file: payload and alpha need 32 bytes, got 31"),  # 22 + 10
])
def test_unpack_messages(data, message):
    """Each problem in a file's header gets its own whole message."""
    with pytest.raises(FormatError) as info:
        unpack(data)
    assert str(info.value) == message


def test_invalid_model_name():
    rejects(raw(name=b"caf\xc3\xa9"), "invalid model name")
    rejects(raw(name=b"\xff"), "invalid model name")
    assert unpack(raw(name=b"x" * 64)).header.model == "x" * 64


def test_hostile_lengths_are_rejected_before_reading():
    class NoBigReads(io.BytesIO):
        def read(self, n=-1):
            assert n is not None and 0 <= n <= 1 << 24, f"asked for {n} bytes"
            return super().read(n)

    data = raw(payload_len=2**32 - 1)
    with pytest.raises(FormatError, match="exceeds the limit of 1073741824 bytes"):
        read(NoBigReads(data))
    data = raw(payload_len=2**30)  # allowed, but the file is short: read in chunks
    with pytest.raises(FormatError, match="truncated"):
        read(NoBigReads(data))


# --- writing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("changes", [
    dict(model="has space"), dict(model=""), dict(model="x" * 65), dict(model="é"),
    dict(scale=3), dict(width=0), dict(width=70000), dict(mode="P"), dict(codec="gif"),
    dict(pad_x=0), dict(pad_x=3), dict(quality=101), dict(quality=-1), dict(quality=9.5),
    dict(width=True),
])
def test_pack_rejects_what_unpack_would(changes):
    with pytest.raises(ValueError, match="cannot pack"):
        pack(make_file(**changes))


def test_pack_rejects_bad_payloads():
    with pytest.raises(ValueError, match="empty LR payload"):
        pack(IrnFile(make_header(), b""))
    with pytest.raises(ValueError, match="has no alpha"):
        pack(make_file(alpha=b"a", mode="RGB"))
    with pytest.raises(ValueError, match="payload must be bytes"):
        pack(IrnFile(make_header(), "text"))  # type: ignore[arg-type]


# --- properties ------------------------------------------------------------------------------

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_format_error(data):
    for candidate in (data, container.MAGIC + bytes([1]) + data, container.MAGIC + bytes([2]) + data):
        with contextlib.suppress(FormatError):
            unpack(candidate)


@FAST
@given(st.integers(0, len(VALID) - 1), st.integers(0, 255), st.binary(max_size=8))
def test_mutations_only_raise_format_error(position, value, extra):
    _check_mutation(VALID, position, value, extra)


def _check_mutation(valid: bytes, position: int, value: int, extra: bytes) -> None:
    """A byte of a valid file changed (and bytes appended, or the file cut there): a FormatError,
    or a file that is exactly what pack would write."""
    data = bytearray(valid)
    data[position] = value
    for candidate in (bytes(data), bytes(data) + extra, bytes(data[:position]) + extra):
        try:
            f = unpack(candidate)
        except FormatError:
            continue
        assert pack(f) == candidate


@FAST
@given(st.builds(
    dict, model=st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True),
    scale=st.sampled_from(container.SUPPORTED_SCALES), width=st.integers(1, 5000),
    height=st.integers(1, 5000), mode=st.sampled_from(list(MODE_IDS)),
    codec=st.sampled_from(list(codec_ids())), quality=st.integers(0, 100),
    fingerprint=st.one_of(st.none(), st.binary(min_size=8, max_size=8))),
    st.binary(min_size=1, max_size=50), st.binary(max_size=20))
def test_valid_headers_round_trip(fields, payload, alpha):
    s = fields["scale"]
    fields.update(pad_x=-fields["width"] % s, pad_y=-fields["height"] % s)
    if fields["mode"] not in ("LA", "RGBA"):
        alpha = b""
    f = IrnFile(Header(**fields), payload, alpha)
    assert unpack(pack(f)) == f


def test_default_pixel_limit_is_pillows():
    """Encoding reads inputs under Pillow's decompression-bomb limit, so readers accept
    exactly what could have been encoded, and refuse a small file declaring more."""
    from PIL import Image

    assert container.MAX_PIXELS_DEFAULT == Image.MAX_IMAGE_PIXELS == 89_478_485
    assert unpack(raw(width=11585, height=7723, pad_x=1, pad_y=1)).header.width == 11585  # 89,470,955 pixels
    rejects(raw(width=65534, height=4096), "declared image size 65534x4096 exceeds the limit of 89478485")


# --- version 4: metadata ---------------------------------------------------------------------

ICC = bytes(36) + b"acsp" + bytes(88) + b"profile body"   # 140 bytes: 128-byte header, signature at 36
EXIF = b"II*\x00\x08\x00\x00\x00" + b"exif body"
META = Metadata(icc_profile=ICC, exif=EXIF)


def make_meta_file(metadata: Metadata = META, alpha: bytes = b"", **changes) -> IrnFile:
    return make_file(alpha, **changes).with_metadata(metadata)


VALID_V4 = pack(make_meta_file(alpha=b"\x89PNG alpha", mode="RGBA"))


def chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack("<4sI", tag, len(data)) + data


def raw_v4(section: bytes, payload: bytes = b"payload", alpha: bytes = b"", **fields) -> bytes:
    """A version-4 file built field by field, with correct CRCs but no validation."""
    v = dict(flags=(1 if alpha else 0) | (2 if section else 0), meta_len=len(section))
    v.update(fields)
    head = struct.pack("<4sBBB", container.MAGIC, 4, v["flags"], 1) + b"m"
    head += struct.pack("<BIIBBBBBII", 2, 4, 4, 4 if alpha else 2, 0, 0, 1, 90, len(payload), len(alpha))
    head += FP + struct.pack("<I", v["meta_len"])
    body = payload + alpha + section
    return head + struct.pack("<II", zlib.crc32(head), zlib.crc32(body)) + body


def test_version_4_layout_matches_spec():
    f = make_meta_file(model="abc")
    data = pack(f)
    n = 3
    section = chunk(b"ICCP", ICC) + chunk(b"EXIF", EXIF)
    assert data[4] == 4 and data[5] == 0x02 and f.header.version == 4 and f.header.has_metadata
    assert data[29 + n:37 + n] == FP
    assert struct.unpack_from("<I", data, 37 + n)[0] == len(section) == 8 + len(ICC) + 8 + len(EXIF)
    assert struct.unpack_from("<I", data, 41 + n)[0] == zlib.crc32(data[:41 + n])
    assert struct.unpack_from("<I", data, 45 + n)[0] == zlib.crc32(f.payload + section)
    assert data[49 + n:49 + n + len(f.payload)] == f.payload
    assert data.endswith(section) and len(data) == 49 + n + len(f.payload) + len(section) == f.size
    assert container.pack_metadata(META) == section


def test_version_4_header_is_version_2_or_3_with_the_metadata_length():
    """Everything before the metadata length is a version-2/3 header; stripping the metadata
    gives back exactly the file without it."""
    for payload_version in (1, 3):
        bare = make_file(model="abc", payload_version=payload_version)
        with_meta = bare.with_metadata(META)
        v4, plain = pack(with_meta), pack(bare)
        assert plain[4] == (2 if payload_version == 1 else 3) and plain[5] == 0
        assert v4[6:37 + 3] == plain[6:37 + 3]
        assert pack(with_meta.with_metadata(Metadata())) == plain
        assert unpack(v4).with_metadata(Metadata()) == replace(bare, header=replace(bare.header, payload_version=3))


@pytest.mark.parametrize("metadata", [META, Metadata(icc_profile=ICC), Metadata(exif=EXIF),
                                      Metadata(exif=b"MM\x00*\x00\x00\x00\x08")])
@pytest.mark.parametrize("alpha", [b"", b"\x89PNG alpha"])
def test_metadata_round_trip(metadata, alpha):
    f = make_meta_file(metadata, alpha, mode="RGBA" if alpha else "RGB")
    data = pack(f)
    # a version-4 file's payload may hold what version 3 allows: it reads as payload version 3
    read_back = replace(f, header=replace(f.header, payload_version=3))
    assert unpack(data) == read_back and pack(read_back) == data
    assert peek_header(data) == read_back.header and peek_header(data).version == 4
    assert len(data) == f.size
    assert unpack(data).metadata.describe() == ", ".join(
        p for p in (f"ICC profile {len(metadata.icc_profile)} bytes" if metadata.icc_profile else "",
                    f"EXIF {len(metadata.exif)} bytes" if metadata.exif else "") if p)
    assert Metadata().describe() == "none" and not Metadata()


def test_pack_refuses_metadata_a_reader_would():
    with pytest.raises(ValueError, match="has_metadata does not say"):
        pack(replace(make_file(), metadata=META))
    with pytest.raises(ValueError, match="has_metadata does not say"):
        pack(make_file(has_metadata=True))
    with pytest.raises(ValueError, match="version-4 file needs the weights fingerprint"):
        pack(make_meta_file(fingerprint=None))
    for bad, needle in ((Metadata(icc_profile=b"x" * 200), "ICC profile is not one"),
                        (Metadata(icc_profile=ICC[:100]), "ICC profile is not one"),
                        (Metadata(exif=b"Exif\x00\x00" + EXIF), "TIFF header"),
                        (Metadata(exif="text"), "must be bytes"),  # type: ignore[arg-type]
                        (Metadata(exif=EXIF + bytes(container.MAX_METADATA_CHUNK)), "over the limit")):
        with pytest.raises(ValueError, match=needle):
            pack(make_meta_file(bad))


@pytest.mark.parametrize("section,needle", [
    (chunk(b"XMP ", b"<x/>"), "unknown metadata chunk b'XMP '"),
    (chunk(b"iccp", ICC), "unknown metadata chunk"),
    (chunk(b"EXIF", EXIF) + chunk(b"ICCP", ICC), "ICCP repeated or out of order"),
    (chunk(b"ICCP", ICC) + chunk(b"ICCP", ICC), "ICCP repeated or out of order"),
    (chunk(b"EXIF", b""), "EXIF has length 0"),
    (chunk(b"EXIF", EXIF)[:-1], "runs past the metadata section"),
    (chunk(b"EXIF", EXIF) + b"\x00" * 5, "ends inside a chunk header"),
    (struct.pack("<4sI", b"ICCP", container.MAX_METADATA_CHUNK + 1), "must be 1..4194304"),
    (chunk(b"ICCP", b"x" * 200), "bad metadata: the ICC profile is not one"),
    (chunk(b"EXIF", b"Exif\x00\x00" + EXIF), "bad metadata: the EXIF data does not start with a TIFF header"),
])
def test_bad_metadata_sections_are_format_errors(section, needle):
    assert unpack(raw_v4(chunk(b"ICCP", ICC))).metadata == Metadata(icc_profile=ICC)
    rejects(raw_v4(section), needle)


def test_metadata_flag_and_length_must_agree():
    section = chunk(b"EXIF", EXIF)
    rejects(raw_v4(section, flags=0), "metadata flag is clear but the metadata length is")
    rejects(raw_v4(b"", flags=2), "metadata flag is set but the metadata length is 0")
    rejects(raw_v4(b""), "a version-4 file without metadata")
    rejects(raw(flags=0x02), "reserved flag bits 0x02")  # bit 1 means nothing before version 4
    rejects(raw_v4(section, flags=0x06), "reserved flag bits 0x04")
    rejects(raw_v4(section, meta_len=container.MAX_METADATA_BYTES + 1), "metadata length 16777217 exceeds")
    rejects(raw_v4(section, meta_len=len(section) + 1), "truncated .irn file: payload, alpha and metadata")
    rejects(raw_v4(section, meta_len=len(section) - 1), "1 unexpected trailing bytes")


def test_corrupt_metadata_is_a_payload_checksum_mismatch():
    data = bytearray(VALID_V4)
    data[-3] ^= 0x40  # in the EXIF chunk
    with pytest.raises(container.PayloadChecksumError):
        unpack(bytes(data))


def test_every_truncation_and_byte_change_of_a_version_4_file_is_rejected():
    for length in range(len(VALID_V4)):
        with pytest.raises(FormatError):
            unpack(VALID_V4[:length])
    for i in range(len(VALID_V4)):
        data = bytearray(VALID_V4)
        data[i] ^= 0x5A
        with pytest.raises(FormatError):
            unpack(bytes(data))


def test_split_and_join_keep_the_metadata():
    rest, f = container.split_payload(VALID_V4)
    assert rest == VALID_V4[:49 + len(f.header.model)] + VALID_V4[49 + len(f.header.model) + len(f.payload):]
    assert container.join_payload(rest, f.payload) == VALID_V4


@FAST
@given(st.integers(0, len(VALID_V4) - 1), st.integers(0, 255), st.binary(max_size=8))
def test_version_4_mutations_only_raise_format_error(position, value, extra):
    _check_mutation(VALID_V4, position, value, extra)


# --- exact messages and boundaries (each kills a mutant a looser match lets through) ---------

def test_network_size_boundaries():
    """Sides of 1 and of the maximum are allowed, and so is exactly NETWORK_PIXELS_FACTOR
    times the pixel limit; one more pixel is not."""
    top = container.MAX_NETWORK_DIMENSION
    for size in ((1, 7), (7, 1), (top, 1), (1, top)):
        assert container._network_size_problem(make_header(network_size=size), 2**40) is None, size
    assert container._network_size_problem(make_header(network_size=(40, 10)), 100) is None
    assert container._network_size_problem(make_header(network_size=(401, 1)), 100) == (
        "declared network size 401x1 exceeds the limit of 400 pixels (4 times the image limit; "
        "set IRNCODEC_MAX_PIXELS to raise it)")
    for size in ((top + 1, 1), (1, top + 1), (0, 1), (1, 0)):
        assert container._network_size_problem(make_header(network_size=size), 2**40) == (
            f"invalid network size {size[0]}x{size[1]}: each side must be 1..{top}")


@pytest.mark.parametrize("size", [(82.0, 50), (82, 50, 1), (82,), [82, 50], "82x50"])
def test_network_size_must_be_a_pair_of_integers(size):
    assert container._network_size_problem(make_header(network_size=size), 2**40) == (
        f"the network size must be a (width, height) pair of integers, got {size!r}")


def test_network_size_equal_to_the_image_message():
    h = make_header(network_size=(33, 20))
    assert container._network_size_problem(h, 2**40) == (
        "the network size equals the image's size (such a file records none)")


class _FailingStream(io.RawIOBase):
    def readable(self):
        return True

    def readinto(self, buffer):
        raise OSError(5, "Input/output error")


def test_read_errors_name_the_os_reason(tmp_path):
    with pytest.raises(FormatError) as info:
        read(_FailingStream())
    assert str(info.value) == "cannot read .irn file: Input/output error"
    with pytest.raises(OSError) as os_error, open(tmp_path, "rb"):  # what this OS says about a directory
        pass
    with pytest.raises(FormatError) as info:
        read(tmp_path)
    assert str(info.value) == f"cannot read {tmp_path}: {os_error.value.strerror}"


@pytest.mark.parametrize("section,message", [
    (b"\x00" * 5, "metadata section ends inside a chunk header (5 bytes left)"),
    (b"\x00", "metadata section ends inside a chunk header (1 bytes left)"),  # the shortest section
    (chunk(b"ICCP", ICC) + b"\x00" * 3, "metadata section ends inside a chunk header (3 bytes left)"),
    (chunk(b"XMP ", b"<x/>"), "unknown metadata chunk b'XMP ' (this irncodec knows ICCP, EXIF)"),
    (chunk(b"EXIF", EXIF) + chunk(b"ICCP", ICC),
     "metadata chunk ICCP repeated or out of order (chunks are ICCP, EXIF, each at most once, in that order)"),
    # a 1-byte chunk passes the length check; only its content is refused
    (chunk(b"EXIF", b"I"), r"bad metadata: the EXIF data does not start with a TIFF header (II*\0 or MM\0*)"),
    # the longest chunk passes the length check; this one has no data behind it
    (struct.pack("<4sI", b"ICCP", container.MAX_METADATA_CHUNK),
     "metadata chunk ICCP of 4194304 bytes runs past the metadata section"),
    (chunk(b"ICCP", ICC) + chunk(b"EXIF", EXIF)[:-1],
     f"metadata chunk EXIF of {len(EXIF)} bytes runs past the metadata section"),
])
def test_metadata_section_messages(section, message):
    with pytest.raises(FormatError) as info:
        unpack(raw_v4(section))
    assert str(info.value) == message


def test_metadata_length_limit():
    """A section of the largest size allowed gets as far as reading it; one byte more does not."""
    with pytest.raises(FormatError) as info:
        unpack(raw_v4(b"", flags=2, meta_len=2**24))
    assert str(info.value) == "truncated .irn file: payload, alpha and metadata need 16777223 bytes, got 7"
    with pytest.raises(FormatError) as info:
        unpack(raw_v4(b"", flags=2, meta_len=2**24 + 1))
    assert str(info.value) == "metadata length 16777217 exceeds the limit of 16777216 bytes"


@pytest.mark.parametrize("changes, alpha_len, message", [
    ({"model": "bad name"}, 0, "invalid model name 'bad name': must be 1-64 characters of A-Z a-z 0-9 . _ -"),
    ({"width": 33.0}, 0, "header field width must be an integer, got 33.0"),
    ({"quality": True}, 0, "header field quality must be an integer, got True"),
    ({"scale": 3}, 0, "unsupported scale 3 (supported: 2, 4)"),
    ({"height": 0}, 0, "invalid image size 33x0: width and height must be at least 1"),
    ({"width": 65536, "pad_x": 0}, 0, "declared image size 65536x20 exceeds the maximum dimension of 65535"),
    ({"width": 2000, "height": 600, "pad_x": 0}, 0,
     "declared image size 2000x600 exceeds the limit of 1000000 pixels (set IRNCODEC_MAX_PIXELS to raise it)"),
    ({"mode": "CMYK"}, 0, "unknown image mode 'CMYK' (known: L, RGB, LA, RGBA)"),
    ({"pad_y": 2}, 0, "invalid padding pad_y=2 for size 20 at scale 2: the padded size must be the next multiple of 2"),
    ({"codec": "gif"}, 0, "unknown LR codec 'gif' (known: png, jpeg, webp, entropy)"),
    ({"quality": -1}, 0, "invalid quality -1 (must be 0..100)"),
    ({"mode": "L"}, 5, "an alpha plane is stored but the image mode L has no alpha"),
    ({"fingerprint": b"short"}, 0, "the weights fingerprint must be 8 bytes, got b'short'"),
    ({"payload_version": 4}, 0, "payload version must be one of 1, 2, 3, got 4"),
    ({"has_metadata": 1}, 0, "has_metadata must be True or False, got 1"),
    ({"fingerprint": None, "payload_version": 3}, 0, "a version-3 file needs the weights fingerprint"),
    ({"fingerprint": None, "payload_version": 2}, 0, "a version-2 file needs the weights fingerprint"),
])
def test_header_problem_messages(changes, alpha_len, message):
    """Why a header cannot be written, in full (``pack`` and ``unpack`` share these)."""
    assert container._header_problem(make_header(**changes), alpha_len, 10**6) == message
    assert container._header_problem(make_header(), 0, 10**6) is None


def test_pack_messages():
    with pytest.raises(ValueError) as info:
        pack(IrnFile(make_header(), "text"))  # type: ignore[arg-type]
    assert str(info.value) == "payload must be bytes, got str"
    with pytest.raises(ValueError) as info:
        pack(IrnFile(make_header(mode="RGBA"), b"p", 7))  # type: ignore[arg-type]
    assert str(info.value) == "alpha must be bytes, got int"
    with pytest.raises(ValueError) as info:
        pack(make_file(has_metadata=True))
    assert str(info.value) == ("cannot pack .irn file: the header's has_metadata does not say whether "
                               "the file has metadata (IrnFile.with_metadata sets both)")


def test_pack_alpha_length_message(monkeypatch):
    monkeypatch.setattr(container, "MAX_PAYLOAD_BYTES", 40)
    with pytest.raises(ValueError) as info:
        pack(make_file(alpha=b"a" * 41, mode="RGBA"))
    assert str(info.value) == "cannot pack .irn file: alpha plane length 41 exceeds the limit of 40 bytes"


def test_pack_and_peek_header_honour_max_pixels():
    big = make_file(width=100, height=100, pad_x=0)
    assert unpack(pack(big, max_pixels=10000)).header.width == 100
    with pytest.raises(ValueError, match="exceeds the limit of 9999 pixels"):
        pack(big, max_pixels=9999)
    data = pack(big)
    assert peek_header(data, max_pixels=10000).width == 100
    with pytest.raises(FormatError, match="exceeds the limit of 9999 pixels"):
        peek_header(data, max_pixels=9999)
    with pytest.raises(FormatError, match="exceeds the limit of 9999 pixels"):
        peek_header(io.BytesIO(data), max_pixels=9999)


def test_metadata_problem_messages():
    top = container.MAX_METADATA_CHUNK
    assert container.metadata_problem({"exif": EXIF}) == "metadata must be a Metadata, got dict"  # type: ignore[arg-type]
    assert container.metadata_problem(Metadata(icc_profile="x")) == "the ICC profile must be bytes, got str"  # type: ignore[arg-type]
    assert container.metadata_problem(Metadata(exif=bytearray(EXIF))) == "the EXIF data must be bytes, got bytearray"  # type: ignore[arg-type]
    assert container.metadata_problem(Metadata(icc_profile=ICC + bytes(top))) == (
        f"the ICC profile is {len(ICC) + top} bytes, over the limit of {top} bytes")
    assert container.metadata_problem(Metadata(icc_profile=ICC, exif=EXIF)) is None


def test_metadata_size_boundaries():
    """A 128-byte ICC profile (its header alone) and an EXIF block of exactly the chunk limit are
    allowed; one more byte of EXIF is not."""
    top = container.MAX_METADATA_CHUNK
    assert container.metadata_problem(Metadata(icc_profile=ICC[:128])) is None
    assert container.metadata_problem(Metadata(exif=EXIF + bytes(top - len(EXIF)))) is None
    assert container.metadata_problem(Metadata(exif=EXIF + bytes(top - len(EXIF) + 1))) == (
        f"the EXIF data is {top + 1} bytes, over the limit of {top} bytes")
