"""The conformance corpus: every committed .irn file, of every format version, keeps decoding.

``tests/conformance/`` holds files written by each released format version
(``make_corpus.py``, run with that release) with the PNG each decoded to when
written. Files are never edited or removed, and neither is any model they name.
"""

from __future__ import annotations

import hashlib
import json
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
