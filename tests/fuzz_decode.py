#!/usr/bin/env python
"""Coverage-guided fuzzing of the whole decode path (container, LR codecs, alpha, network).

    python tests/fuzz_decode.py -max_total_time=300       # libFuzzer flags; needs `pip install atheris`

Every input must either decode or raise :class:`irncodec.errors.IrnError`;
anything else (another exception, a crash) is a finding, and atheris stops
with the input that caused it. Inputs are read three ways, chosen by their
first byte, so that mutations also get past the CRCs to the Pillow decoders:

0. the raw bytes of an ``.irn`` file;
1. a valid header (from a seed file) with the rest as its LR payload, CRCs fixed;
2. a seed's real LR payload under header fields taken from the input;
3. a seed file with a few bytes of its LR payload changed, CRCs fixed, so that
   damaged but plausible payloads reach the LR decoders, the network and the
   alpha plane (most of these still decode).

The model is a tiny random IRN with an LR entropy coder (so ``entropy``
payloads reach CompressAI's rANS decoder) written at start-up, and the pixel limit is set
low (``IRNCODEC_MAX_PIXELS``) so every input decodes in milliseconds.
``tests/test_fuzz.py`` runs the same target under hypothesis in CI.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
import tempfile
from pathlib import Path


def _coverage_instrumented():
    """When run as the fuzzer, instrument irncodec and Pillow (not all of torch) for coverage."""
    if __name__ != "__main__":
        return contextlib.nullcontext()
    import atheris

    return atheris.instrument_imports(include=["irncodec", "PIL"])


with _coverage_instrumented():
    from PIL import JpegImagePlugin, PngImagePlugin, WebPImagePlugin  # noqa: F401  (else loaded lazily)

    import irncodec
    from irncodec import container, zoo
    from irncodec.container import MODE_IDS, Header
    from irncodec.errors import IrnError
    from irncodec.lr_codecs import codec_ids

_CODECS = list(codec_ids())
_MODES = list(MODE_IDS)


def write_model(folder: Path) -> str:
    """A tiny x2 model (with an entropy coder) with random weights, saved for the decoder; returns its path."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.conftest import ENTROPY_OPTIONS, make_tiny_model

    path = folder / "fuzz-x2.safetensors"
    zoo.export(make_tiny_model(2, **ENTROPY_OPTIONS), path)
    return str(path)


def make_seeds(model: str) -> list[bytes]:
    """Valid files: each LR codec, with and without alpha, odd sizes, an entropy
    stream with a step block (format version 3), a file with an ICC profile
    and EXIF data (format version 4), and one resampled for its network (scale 1.5,
    format version 5)."""
    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.conftest import photo_like

    seeds = []
    for codec, quality, size, mode in [("png", None, (9, 7), "RGB"), ("jpeg", 60, (20, 12), "RGB"),
                                       ("webp", 50, (15, 16), "RGBA"), ("jpeg", 90, (6, 5), "L"),
                                       ("png", None, (3, 3), "LA"), ("entropy", 2, (21, 18), "RGB"),
                                       ("entropy", 1, (40, 8), "RGBA")]:
        img = photo_like(*size).convert(mode)
        if mode in ("RGBA", "LA"):
            img.putalpha(Image.linear_gradient("L").resize(size))
        seeds.append(irncodec.encode(img, quality=quality, codec=codec, model=model))
    from irncodec.lr_codecs import get_codec
    from irncodec.pipeline import Source, downscale

    net, source = zoo.load_model(model), Source(photo_like(24, 20))
    lr, pad_x, pad_y = downscale(net, source.rgb)
    stepped = get_codec("entropy", coder=net.lr_coder, step=1.6)
    seeds.append(container.pack(source.file(net, model, stepped, 3, stepped.encode(lr, 3), (pad_x, pad_y))))
    img = photo_like(10, 6)
    exif = Image.Exif()
    exif[0x010F] = "fuzz"
    img.info.update(icc_profile=bytes(36) + b"acsp" + bytes(92), exif=exif.tobytes())
    seeds.append(irncodec.encode(img, quality=70, codec="jpeg", model=model))
    img = photo_like(17, 11).convert("RGBA")
    img.putalpha(Image.linear_gradient("L").resize((17, 11)))
    seeds.append(irncodec.encode(img, quality=60, codec="webp", scale=1.5, model=model))
    return seeds


def variant(data: bytes, seeds: list[bytes]) -> bytes:
    """The ``.irn`` bytes an input stands for (see the module docstring)."""
    if not data:
        return data
    kind, rest = data[0] % 4, data[1:]
    if kind == 0 or not rest:
        return rest
    seed = container.unpack(seeds[rest[0] % len(seeds)])
    if kind == 3:
        payload = bytearray(seed.payload)
        for i in range(1, len(rest) - 2, 3):
            payload[struct.unpack_from("<H", rest, i)[0] % len(payload)] = rest[i + 2]
        return _raw(seed.header, bytes(payload), seed.alpha, seed.metadata)
    if kind == 1:
        payload, alpha = rest[1:] or b"\x00", seed.alpha
        return _raw(seed.header, payload, alpha, seed.metadata)
    fields = (rest[1:] + bytes(17))[:17]
    width, height = struct.unpack("<HH", fields[:4])
    scale = (2, 4)[fields[4] % 2]
    h = Header(model=seed.header.model, scale=scale, width=width, height=height,
               mode=_MODES[fields[5] % len(_MODES)], pad_x=fields[6] % 4, pad_y=fields[7] % 4,
               codec=_CODECS[fields[8] % len(_CODECS)], quality=fields[9] % 101,
               fingerprint=seed.header.fingerprint if fields[11] % 2 else None,
               has_metadata=seed.header.has_metadata,
               network_size=struct.unpack("<HH", fields[13:17]) if fields[12] % 2 else None)
    return _raw(h, seed.payload, seed.alpha if fields[10] % 2 else b"", seed.metadata)


def _raw(h: Header, payload: bytes, alpha: bytes, metadata: container.Metadata | None = None) -> bytes:
    """A file with correct CRCs for any header values, valid or not (bypasses pack's checks)."""
    import zlib

    section = container.pack_metadata(metadata) if metadata and h.has_metadata else b""
    flags = (container.FLAG_ALPHA if alpha else 0) | (container.FLAG_METADATA if section else 0)
    name = h.model.encode()
    head = struct.pack("<4sBBB", container.MAGIC, h.version, flags, len(name)) + name
    head += struct.pack("<BIIBBBBBII", h.scale, h.width, h.height, MODE_IDS[h.mode], h.pad_x, h.pad_y,
                        codec_ids()[h.codec], h.quality, len(payload), len(alpha))
    head += h.fingerprint or b""
    if h.version >= container.METADATA_VERSION:
        head += struct.pack("<I", len(section))
    if h.version >= container.RESAMPLE_VERSION:
        head += struct.pack("<II", h.network_width, h.network_height)
    body = payload + alpha + section
    return head + struct.pack("<II", zlib.crc32(head), zlib.crc32(body)) + body


def check(data: bytes, seeds: list[bytes], model: str) -> str:
    """Decode one fuzz input: 'decoded' or the IrnError class name; anything else propagates."""
    try:
        image = irncodec.decode(variant(data, seeds), model=model)
    except IrnError as exc:
        return type(exc).__name__
    assert image.width >= 1 and image.height >= 1
    return "decoded"


def main() -> None:
    from collections import Counter

    import atheris

    os.environ.setdefault(container.MAX_PIXELS_ENV, str(1 << 16))  # read at decode time
    outcomes: Counter = Counter()

    def one_input(data: bytes) -> None:
        outcomes[check(data, seeds, model)] += 1
        if outcomes.total() % 100_000 == 0:  # libFuzzer exits without running atexit hooks
            print(f"outcomes after {outcomes.total()} inputs: {dict(outcomes.most_common())}", file=sys.stderr)

    folder = Path(tempfile.mkdtemp(prefix="irn-fuzz-"))
    model = write_model(folder)
    seeds = make_seeds(model)
    corpus = folder / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(seeds):
        for kind in range(3):
            (corpus / f"seed{i}-{kind}").write_bytes(bytes([kind]) + (seed if kind == 0 else bytes([i]) + seed[-40:]))
    atheris.Setup(sys.argv + [str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
