"""Add the files of one format version to the conformance corpus.

Run it with the irncodec whose format version is to be recorded (for an older
version, from a checkout of that release). It writes, for every shipped model,
an ``.irn`` file of a crop of a photo, plus files of other image modes and
sizes, and of each current entropy level at a scaled step (``STEP``, the
format-version-3 step block); next to each, the PNG of what it decodes to; and the entries of
``manifest.json``. Existing files are never replaced: the corpus only grows,
and ``tests/test_conformance.py`` checks that every file keeps decoding.

    python tests/conformance/make_corpus.py [--image ../shared/datasets/kodak/kodim23.png]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

import irncodec
from irncodec import zoo

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"
#: Image modes and sizes beyond each model's RGB file, written with these models.
EXTRA_CASES = [("L", (29, 19)), ("RGBA", (37, 23)), ("LA", (21, 13)), ("RGB", (1, 1))]
EXTRA_MODELS = ("sain-x2-jpeg-small", "irn-x4-small", "irn-x2-entropy-q3-v2")
RGB_SIZE = (41, 27)
#: The step multiplier of the entropy levels' stepped files.
STEP = 1.3


def codec_of(name: str) -> tuple[str, int | None]:
    """The LR codec (and quality) each shipped model is used with."""
    level = re.search(r"entropy-q(\d)", name)
    if level:
        return "entropy", int(level.group(1))
    for codec, quality in (("jpeg", 75), ("webp", 80)):
        if f"-{codec}-" in name:
            return codec, quality
    return "png", None


def encode(image: Image.Image, model: str, codec: str, quality: int | None, step: float) -> bytes:
    """The file ``irncodec.encode`` makes, or with the entropy codec's ``step`` (as rate control does)."""
    if step == 1:
        return irncodec.encode(image, quality=quality, codec=codec, model=model)
    from irncodec import container
    from irncodec.lr_codecs import codec_class
    from irncodec.pipeline import Source, downscale

    net = zoo.load_model(model)
    source = Source(image)
    lr, pad_x, pad_y = downscale(net, source.rgb)
    lr_codec = codec_class(codec).for_model(net, model, step=step)
    payload = lr_codec.encode(lr, quality)
    return container.pack(source.file(net, model, lr_codec, quality, payload, (pad_x, pad_y)))


def test_image(source: Path, mode: str, size: tuple[int, int]) -> Image.Image:
    """A crop of the photo (halved, for detail at small sizes) in ``mode``, alpha a gradient."""
    photo = Image.open(source).convert("RGB")
    photo = photo.resize((photo.width // 2, photo.height // 2), Image.Resampling.BICUBIC)
    left, top = photo.width // 3, photo.height // 3
    img = photo.crop((left, top, left + size[0], top + size[1]))
    if mode in ("L", "LA"):
        img = img.convert("L")
    if mode in ("RGBA", "LA"):
        alpha = np.add.outer(np.arange(size[1]) * 7, np.arange(size[0]) * 5) % 256
        img.putalpha(Image.fromarray(alpha.astype(np.uint8), "L"))
    return img


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", type=Path, default=HERE.parents[2] / "shared/datasets/kodak/kodim23.png")
    args = parser.parse_args()
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    cases = [(name, "RGB", RGB_SIZE, 1.0) for name in sorted(zoo.available_models())]
    cases += [(name, mode, size, 1.0) for name in EXTRA_MODELS for mode, size in EXTRA_CASES]
    levels = sorted(zoo.LEVEL_MODELS["entropy"].values())
    cases += [(name, "RGB", RGB_SIZE, STEP) for name in levels]
    cases += [(levels[0], mode, size, STEP) for mode, size in EXTRA_CASES]
    added = 0
    for model, mode, size, step in cases:
        codec, quality = codec_of(model)
        data = encode(test_image(args.image, mode, size), model, codec, quality, step)
        version = data[4]
        stepped = "" if step == 1 else f"-step{step:g}"
        stem = f"v{version}-{model}-{codec}{quality or ''}{stepped}-{mode}-{size[0]}x{size[1]}"
        if (HERE / f"{stem}.irn").exists() or stem in manifest:
            continue
        decoded = irncodec.decode(data)
        (HERE / f"{stem}.irn").write_bytes(data)
        decoded.save(HERE / f"{stem}.png")
        manifest[stem] = {
            "version": version, "model": model, "codec": codec, "quality": quality,
            **({} if step == 1 else {"step": step}),
            "mode": decoded.mode, "size": list(decoded.size),
            "irn_sha256": hashlib.sha256(data).hexdigest(),
            "decoded_sha256": hashlib.sha256(decoded.tobytes()).hexdigest(),
            "written_by": f"irncodec {irncodec.__version__}",
        }
        added += 1
    MANIFEST.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")
    print(f"added {added} files ({len(manifest)} in the corpus)")


if __name__ == "__main__":
    main()
