"""The model zoo: shipped weights load and verify; bad weights are clear errors."""

import json

import pytest
import torch
from safetensors.torch import save_file

from irncodec import zoo
from irncodec.errors import ModelError

from .conftest import KODAK, make_tiny_model


@pytest.fixture
def private_zoo(tmp_path, monkeypatch):
    """An empty zoo in a temporary folder, so tests never touch the shipped one."""
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(zoo, "MANIFEST", tmp_path / "manifest.json")
    zoo._load_cached.cache_clear()
    yield tmp_path
    zoo._load_cached.cache_clear()


def register_tiny(folder, name="tiny-x2", scale=2):
    model = make_tiny_model(scale)
    zoo.export(model, folder / f"{name}.safetensors", record={"parameters": 123})
    zoo.register(name, "a test model", {"parameters": 123})
    return model


def test_register_and_load_by_name(private_zoo):
    model = register_tiny(private_zoo)
    entry = zoo.available_models()["tiny-x2"]
    assert entry["scale"] == 2 and len(entry["sha256"]) == 64
    assert json.loads((private_zoo / "tiny-x2.json").read_text()) == {"parameters": 123}
    loaded = zoo.load_model("tiny-x2")
    x = torch.rand(1, 3, 16, 16)
    # fp16 storage: the LR image stays within a fraction of an 8-bit level
    assert (loaded(x)[0] - model(x)[0]).abs().max() < 1e-3


def test_corrupt_weights_fail_checksum(private_zoo):
    register_tiny(private_zoo)
    path = private_zoo / "tiny-x2.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum"):
        zoo.load_model("tiny-x2")


def test_missing_weights(private_zoo):
    register_tiny(private_zoo)
    (private_zoo / "tiny-x2.safetensors").unlink()
    with pytest.raises(ModelError, match="missing"):
        zoo.load_model("tiny-x2")


def test_unknown_name_and_missing_path(private_zoo):
    with pytest.raises(ModelError, match="unknown model"):
        zoo.load_model("nope")
    with pytest.raises(ModelError, match="not found"):
        zoo.load_model(str(private_zoo / "nope.safetensors"))


@pytest.mark.parametrize("content", [b"", b"garbage", b"\x08\x00\x00\x00\x00\x00\x00\x00{}      "])
def test_unreadable_weights_file(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(ModelError):
        zoo.load_model(str(path))


def test_foreign_safetensors_rejected(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ModelError, match="not an irncodec weights file"):
        zoo.load_model(str(path))


def test_weights_of_wrong_shape_rejected(tmp_path):
    path = tmp_path / "wrong.safetensors"
    zoo.export(make_tiny_model(2), path)
    _, state, _ = zoo.read_weights(path)
    state.pop(next(iter(state)))
    meta = {"format": zoo.WEIGHTS_FORMAT, "config": json.dumps(make_tiny_model(2).config.to_dict())}
    save_file(state, str(path), metadata=meta)
    with pytest.raises(ModelError, match="do not match"):
        zoo.load_model(str(path))


@pytest.mark.parametrize("change,message", [
    ({"growth": 1e9}, "growth must be an integer"), ({"growth": 10**9}, "growth = 1000000000 is out of range"),
    ({"clamp": "a"}, "clamp must be a finite number"), ({"scale": True}, "scale must be an integer"),
    ({"architecture": 3}, "architecture must be a string"),
    ({"clamp": float("nan")}, "clamp must be a finite number, got nan"),
    ({"bogus": 1}, "unknown IRN config keys"),
])
def test_damaged_config_is_one_model_error(tmp_path, change, message):
    """A damaged config in a weights file is one line, before any network is built."""
    path = tmp_path / "damaged.safetensors"
    zoo.export(make_tiny_model(2), path)
    _, state, _ = zoo.read_weights(path)
    meta = {"format": zoo.WEIGHTS_FORMAT, "config": json.dumps({**make_tiny_model(2).config.to_dict(), **change})}
    save_file(state, str(path), metadata=meta)
    with pytest.raises(ModelError, match=f"invalid metadata: {message}") as info:
        zoo.load_model(str(path))
    assert "\n" not in str(info.value)


def test_model_name_for_paths():
    assert zoo.model_name_for("/some/where/my-model.safetensors") == "my-model"
    with pytest.raises(ModelError):
        zoo.model_name_for("/x/bad name!.safetensors")


def test_shipped_models_verify_and_match_their_entry():
    """Every model in the package manifest loads, passes its checksum and has its scale."""
    shipped = zoo.available_models()
    for name, entry in shipped.items():
        model = zoo.load_model(name)
        assert model.scale == entry["scale"]
        record = json.loads((zoo.WEIGHTS_DIR / f"{name}.json").read_text())
        assert record["iterations"] > 0 and record["parameters"] == entry["parameters"]
    assert set(zoo.DEFAULT_MODELS.values()) <= set(shipped)




@pytest.mark.skipif(not KODAK.is_dir(), reason="needs ../shared/datasets/kodak")
def test_shipped_x2_beats_bicubic_on_kodak_crops():
    """The default x2 model really was trained: on Kodak it beats bicubic rescaling."""
    import torch.nn.functional as F
    from PIL import Image

    from irncodec.metrics import psnr, quantize_8bit
    from irncodec.tensors import image_to_tensor

    model = zoo.load_model(zoo.DEFAULT_MODELS[2])
    gains = []
    for name in ("kodim05.png", "kodim23.png"):
        x = image_to_tensor(Image.open(KODAK / name).convert("RGB"))[:, :, :256, :256]
        with torch.no_grad():
            ours = quantize_8bit(model.upscale(quantize_8bit(model(x)[0]), 0.0))
        small = quantize_8bit(F.interpolate(x, scale_factor=0.5, mode="bicubic", antialias=True))
        bicubic = quantize_8bit(F.interpolate(small, scale_factor=2, mode="bicubic"))
        gains.append(psnr(ours, x) - psnr(bicubic, x))
    assert min(gains) > 1.0, gains


@pytest.mark.skipif(not KODAK.is_dir(), reason="needs ../shared/datasets/kodak")
def test_shipped_entropy_levels_trade_rate_for_quality():
    """Each shipped ``-c entropy`` level really was trained for its rate: more bits, more dB."""
    from PIL import Image

    import irncodec
    from irncodec.metrics import psnr
    from irncodec.tensors import image_to_tensor

    levels = zoo.levels("entropy", 2)
    assert len(levels) >= 3
    image = Image.open(KODAK / "kodim23.png").convert("RGB").crop((256, 128, 512, 384))
    points = []
    for level in levels:
        data = irncodec.encode(image, codec="entropy", quality=level)
        decoded = irncodec.decode(data)
        points.append((len(data), psnr(image_to_tensor(decoded), image_to_tensor(image))))
    sizes, quality = zip(*points)
    assert list(sizes) == sorted(sizes) and len(set(sizes)) == len(sizes), points
    assert list(quality) == sorted(quality), points
    assert quality[-1] > 33.0, points  # above the JPEG path's best here (q90: 32.2 dB)
