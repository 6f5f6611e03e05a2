"""The fuzz target of tests/fuzz_decode.py under hypothesis: every input decodes or is an IrnError."""

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from irncodec import container

from . import fuzz_decode


@pytest.fixture(scope="module")
def target(tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv(container.MAX_PIXELS_ENV, str(1 << 16))
    model = fuzz_decode.write_model(tmp_path_factory.mktemp("fuzz"))
    return fuzz_decode.make_seeds(model), model


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
outcomes: Counter = Counter()


@FUZZ
@given(st.data())
def test_any_input_decodes_or_raises_irn_error(target, data):
    seeds, model = target
    kind = data.draw(st.integers(0, 3))
    if kind == 0:  # mutate a seed file: flip, cut or extend bytes
        seed = bytearray(seeds[data.draw(st.integers(0, len(seeds) - 1))])
        for _ in range(data.draw(st.integers(1, 4))):
            seed[data.draw(st.integers(0, len(seed) - 1))] = data.draw(st.integers(0, 255))
        body = bytes(seed[: data.draw(st.integers(0, len(seed)))]) + data.draw(st.binary(max_size=8))
    else:
        body = bytes([data.draw(st.integers(0, 255))]) + data.draw(st.binary(max_size=300))
    outcomes[fuzz_decode.check(bytes([kind]) + body, seeds, model)] += 1


def test_the_seeds_decode(target):
    seeds, model = target
    assert all(fuzz_decode.check(bytes([0]) + s, seeds, model) == "decoded" for s in seeds)
    # a seed's payload under its own header (mode 1) decodes too: the CRC fixing works
    payload = container.unpack(seeds[1]).payload
    assert fuzz_decode.check(bytes([1, 1]) + payload, seeds, model) == "decoded"


def test_fuzzing_reaches_every_decode_path(target):
    """Inputs of every kind, drawn with a fixed seed: besides never raising anything
    but IrnError, enough of them must get past the container and the LR decoders for
    the network, the entropy decoder and the alpha plane to be exercised (measured:
    55 of these 240 inputs decode, through every LR codec, with and without alpha,
    10 of them entropy streams with a step block, 3 files with metadata, 5 resampled)."""
    import random

    seeds, model = target
    rng = random.Random(0)
    tally: Counter = Counter()
    for i in range(240):
        kind = 3 if i % 2 else (i // 2) % 3
        if kind == 3:
            body = bytes([rng.randrange(256)]) + bytes(rng.randrange(256) for _ in range(3 * rng.randint(1, 3)))
        elif kind == 0:
            seed = bytearray(seeds[rng.randrange(len(seeds))])
            seed[rng.randrange(len(seed))] = rng.randrange(256)
            body = bytes(seed)
        else:
            body = bytes(rng.randrange(256) for _ in range(rng.randint(2, 40)))
        data = bytes([kind]) + body
        outcome = fuzz_decode.check(data, seeds, model)
        tally[outcome] += 1
        if outcome == "decoded":
            irn = container.unpack(fuzz_decode.variant(data, seeds))
            h = irn.header
            tally[f"decoded {h.codec}{' +alpha' if h.mode in ('LA', 'RGBA') else ''}"] += 1
            if h.codec == "entropy" and irn.payload[:4] == bytes(4):
                tally["decoded entropy with a step block"] += 1
            if irn.metadata:
                tally["decoded with metadata"] += 1
            if h.network_size is not None:
                tally["decoded resampled"] += 1
    assert tally["decoded"] >= 0.15 * 240, tally
    for path in ("decoded jpeg", "decoded entropy", "decoded entropy +alpha", "decoded entropy with a step block",
                 "decoded with metadata", "decoded resampled"):
        assert tally[path] > 0, (path, tally)
    assert set(tally) - {"decoded"} - {k for k in tally if k.startswith("decoded ")} <= {
        "FormatError", "PayloadChecksumError", "CodecError", "ImageError", "ModelError"}
