"""Add the files of one format version to the conformance corpus.

Run it with the irncodec whose format version is to be recorded (for an older
version, from a checkout of that release). It writes, for every shipped model,
an ``.irn`` file of a crop of a photo, plus files of other image modes and
sizes, of each current entropy level at a scaled step (``STEP``, the
format-version-3 step block), of images with an ICC profile and EXIF data (``METADATA_CASES``,
format version 4) and at scales that resample the image (``RESAMPLE_CASES``, format
version 5); next to each, the PNG of what it decodes to; and the entries of
``manifest.json``. Existing files are never replaced: the corpus only grows,
and ``tests/test_conformance.py`` checks that every file keeps decoding.

    python tests/conformance/make_corpus.py [--image ../shared/datasets/kodak/kodim23.png]
"""

from __future__ import annotations

import argparse
import hashlib
import io
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
#: Files with metadata (format version 4): model, mode, size as stored, step, and what the input
#: carries: "icc" (an sRGB profile), "exif" (EXIF data with Orientation 6: the input is the crop
#: turned a quarter turn, which encoding turns upright again).
METADATA_CASES = [("sain-x2-jpeg-small", "RGB", RGB_SIZE, 1.0, ("icc", "exif")),
                  ("irn-x4-small", "RGBA", (37, 23), 1.0, ("icc",)),
                  ("irn-x2-entropy-q1", "L", (29, 19), STEP, ("exif",))]
#: Files at a scale that is not the network's (format version 5): model, mode, size, step,
#: metadata, scale.
RESAMPLE_CASES = [("sain-x2-jpeg-small", "RGB", RGB_SIZE, 1.0, (), 1.5),
                  ("irn-x4-small", "RGBA", (37, 23), 1.0, (), 3.0),
                  ("irn-x2-webp-small", "LA", (21, 13), 1.0, ("icc",), 1.25),
                  ("irn-x2-entropy-q1-exact", "RGB", RGB_SIZE, STEP, (), 1.5)]


def codec_of(name: str) -> tuple[str, int | None]:
    """The LR codec (and quality) each shipped model is used with."""
    level = re.search(r"entropy-q(\d)", name)
    if level:
        return "entropy", int(level.group(1))
    for codec, quality in (("jpeg", 75), ("webp", 80)):
        if f"-{codec}-" in name:
            return codec, quality
    return "png", None


def encode(image: Image.Image | bytes, model: str, codec: str, quality: int | None, step: float,
           scale: float | None = None) -> bytes:
    """The file ``irncodec.encode`` makes, or with the entropy codec's ``step`` (as rate control does)."""
    if step == 1:
        return irncodec.encode(image, quality=quality, codec=codec, model=model, scale=scale)
    from irncodec import container
    from irncodec.lr_codecs import codec_class
    from irncodec.pipeline import Source

    net = zoo.load_model(model)
    source = Source(image)
    lr, padding, resized = source.downscale(net, scale)
    lr_codec = codec_class(codec).for_model(net, model, step=step)
    payload = lr_codec.encode(lr, quality)
    return container.pack(source.file(net, model, lr_codec, quality, payload, padding, resized))


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


def sha256_or_none(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def with_metadata(image: Image.Image, kinds: tuple[str, ...]) -> bytes:
    """A PNG file of ``image`` with an ICC profile and/or EXIF data that says Orientation 6
    (its pixels then stored turned, so that a viewer shows ``image``)."""
    from PIL import ImageCms

    options: dict = {}
    if "icc" in kinds:
        options["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    if "exif" in kinds:
        exif = Image.Exif()
        exif[0x010F], exif[0x0110], exif[0x0132] = "irncodec", "conformance corpus", "2024:01:02 03:04:05"
        exif[0x0112] = 6  # shown turned a quarter turn clockwise: store it turned the other way
        exif[0x8769] = {0x9003: "2024:01:02 03:04:05"}
        options["exif"] = exif.tobytes()
        image = image.transpose(Image.Transpose.ROTATE_90)
    out = io.BytesIO()
    image.save(out, format="PNG", **options)
    return out.getvalue()


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
    all_cases = ([(*case, (), None) for case in cases] + [(*case, None) for case in METADATA_CASES]
                 + RESAMPLE_CASES)
    added = 0
    for model, mode, size, step, kinds, scale in all_cases:
        codec, quality = codec_of(model)
        image = test_image(args.image, mode, size)
        data = encode(with_metadata(image, kinds) if kinds else image, model, codec, quality, step, scale)
        version = data[4]
        stepped = "" if step == 1 else f"-step{step:g}"
        meta = "".join(f"-{kind}" for kind in kinds)
        scaled = "" if scale is None else f"-s{scale:g}"
        stem = f"v{version}-{model}-{codec}{quality or ''}{scaled}{stepped}{meta}-{mode}-{size[0]}x{size[1]}"
        if (HERE / f"{stem}.irn").exists() or stem in manifest:
            continue
        decoded = irncodec.decode(data)
        (HERE / f"{stem}.irn").write_bytes(data)
        decoded.save(HERE / f"{stem}.png")
        manifest[stem] = {
            "version": version, "model": model, "codec": codec, "quality": quality,
            **({} if step == 1 else {"step": step}),
            **({} if scale is None else {"scale": scale}),
            **({"icc_profile_sha256": sha256_or_none(decoded.info.get("icc_profile")),
                "exif_sha256": sha256_or_none(decoded.info.get("exif"))} if kinds else {}),
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
