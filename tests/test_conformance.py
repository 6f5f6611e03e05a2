"""The conformance corpus: every committed .irn file, of every format version, keeps decoding.

``tests/conformance/`` holds files written by each released format version
(``make_corpus.py``, run with that release) with the PNG each decoded to when
written, and for version 4 the ICC profile and EXIF data it decoded with.
Files are never edited or removed, and neither is any model they name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import irncodec
from irncodec import container, zoo

CORPUS = Path(__file__).resolve().parent / "conformance"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
#: How far a decode may drift from the recorded one on another CPU or torch
#: build (float rounding in the network can move a pixel value by one or two);
#: on the machine that wrote the corpus the decode is identical.
MAX_ABS_DIFF = 3
MAX_DIFFERING = 0.02


@pytest.mark.parametrize("stem", sorted(MANIFEST))
def test_corpus_file_decodes_as_recorded(stem):
    entry = MANIFEST[stem]
    data = (CORPUS / f"{stem}.irn").read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["irn_sha256"], "corpus files are never edited"
    header = container.unpack(data).header
    assert header.version == entry["version"] == data[4]
    assert (header.model, header.codec) == (entry["model"], entry["codec"])
    if "step" in entry:  # the step block of docs/format.md: u32 0, u16 step in thousandths
        payload = container.unpack(data).payload
        assert payload[:4] == bytes(4) and int.from_bytes(payload[4:6], "little") == round(entry["step"] * 1000)
    decoded = irncodec.decode(data)
    assert decoded.mode == entry["mode"] and list(decoded.size) == entry["size"]
    for key in ("icc_profile", "exif"):  # version 4: the metadata comes back as it was recorded
        recorded = entry.get(f"{key}_sha256")
        value = decoded.info.get(key)
        assert (None if value is None else hashlib.sha256(value).hexdigest()) == recorded
    if hashlib.sha256(decoded.tobytes()).hexdigest() == entry["decoded_sha256"]:
        return
    expected = np.asarray(Image.open(CORPUS / f"{stem}.png"), dtype=np.int16)
    diff = np.abs(np.asarray(decoded, dtype=np.int16) - expected)
    assert diff.max() <= MAX_ABS_DIFF and (diff > 0).mean() <= MAX_DIFFERING, (
        f"{stem} decodes differently from when it was written: max |diff| {diff.max()}, "
        f"{(diff > 0).mean():.1%} of values differ")


def test_corpus_covers_every_version_and_every_shipped_model():
    """New format versions and new models get corpus files (run make_corpus.py)."""
    versions = {entry["version"] for entry in MANIFEST.values()}
    assert versions == set(container.READ_VERSIONS)
    # irncodec writes version 2, and 3 only for a payload that needs it (an entropy step block)
    current = {entry["model"] for entry in MANIFEST.values() if entry["version"] == 2}
    missing = set(zoo.available_models()) - current
    assert not missing, f"shipped models without a version-2 corpus file: {missing}"
    stepped = {entry["model"] for entry in MANIFEST.values() if entry["version"] == 3 and "step" in entry}
    missing = set(zoo.LEVEL_MODELS["entropy"].values()) - stepped
    assert not missing, f"entropy levels without a version-3 (step block) corpus file: {missing}"
    # version 4 is written exactly for files with metadata: ICC profile and EXIF, each alone and together,
    # with an alpha plane and with a step block
    v4 = [entry for entry in MANIFEST.values() if entry["version"] == 4]
    assert all(e.get("icc_profile_sha256") or e.get("exif_sha256") for e in v4)
    assert all(e["version"] in (4, 5) for e in MANIFEST.values() if e.get("icc_profile_sha256") or e.get("exif_sha256"))
    kinds = {(bool(e.get("icc_profile_sha256")), bool(e.get("exif_sha256"))) for e in v4}
    assert kinds == {(True, False), (False, True), (True, True)}
    assert any(e["mode"] in ("LA", "RGBA") for e in v4) and any("step" in e for e in v4)
    # version 5 is written exactly for files at a scale that resamples: up (x2 network) and down (x4), with
    # an alpha plane, metadata and a step block among them
    v5 = [entry for entry in MANIFEST.values() if entry["version"] == 5]
    assert all("scale" in e for e in v5) and all(e["version"] == 5 for e in MANIFEST.values() if "scale" in e)
    assert {e["scale"] < 2 for e in v5} == {True, False} and any(e["mode"] in ("LA", "RGBA") for e in v5)
    assert any("step" in e for e in v5) and any(e.get("icc_profile_sha256") for e in v5)
    for mode in ("L", "LA", "RGB", "RGBA"):
        assert any(e["mode"] == mode and e["version"] == v for e in MANIFEST.values() for v in versions)


def test_models_named_by_the_corpus_stay_shipped():
    shipped = zoo.available_models()
    for entry in MANIFEST.values():
        assert entry["model"] in shipped, f"model {entry['model']} is named by released files: never remove it"


def test_version_1_and_2_files_hold_the_same_image():
    """The versions differ in the header only: the same input gave the same payload and image."""
    for stem, entry in MANIFEST.items():
        if entry["version"] != 1:
            continue
        twin = "v2" + stem[2:]
        if twin in MANIFEST:
            v1 = container.unpack((CORPUS / f"{stem}.irn").read_bytes())
            v2 = container.unpack((CORPUS / f"{twin}.irn").read_bytes())
            assert (v1.payload, v1.alpha) == (v2.payload, v2.alpha)
            assert entry["decoded_sha256"] == MANIFEST[twin]["decoded_sha256"]


def test_every_corpus_file_packs_back_to_its_bytes():
    """The writer still writes every version byte for byte as it was written: files without
    metadata are exactly what irncodec wrote before version 4 existed."""
    for stem in MANIFEST:
        data = (CORPUS / f"{stem}.irn").read_bytes()
        assert container.pack(container.unpack(data)) == data, stem


def test_metadata_changes_nothing_but_the_metadata():
    """Each version-4 file's input was its metadata-free twin's image with an ICC profile and
    EXIF data, turned by a quarter and marked Orientation 6: encoding turned it upright again, so
    payload, alpha plane and decoded image are the twin's, and the stored EXIF says Orientation 1."""
    for stem, entry in MANIFEST.items():
        if entry["version"] != 4:
            continue
        twin_stem = next(f"v{v}{stem[2:]}".replace("-icc", "").replace("-exif", "") for v in (2, 3)
                         if f"v{v}{stem[2:]}".replace("-icc", "").replace("-exif", "") in MANIFEST)
        f = container.unpack((CORPUS / f"{stem}.irn").read_bytes())
        twin = container.unpack((CORPUS / f"{twin_stem}.irn").read_bytes())
        assert (f.payload, f.alpha, f.header.width, f.header.height) == (
            twin.payload, twin.alpha, twin.header.width, twin.header.height), stem
        # (a version-4 header reads as payload version 3: its payload may hold a step block)
        assert f.header == replace(twin.header, has_metadata=True, payload_version=3)
        assert entry["decoded_sha256"] == MANIFEST[twin_stem]["decoded_sha256"]
        if f.metadata.exif:
            exif = Image.Exif()
            exif.load(b"Exif\x00\x00" + f.metadata.exif)
            assert exif[0x0112] == 1 and exif[0x010F] == "irncodec"
