"""The trainer: losses fall, checkpoints resume exactly, export loads back."""

from pathlib import Path

import pytest
import torch
import yaml

from irncodec import zoo
from irncodec.errors import ConfigError
from irncodec.train import Trainer, TrainConfig, export_checkpoint, train

from .conftest import photo_like


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        photo_like(40, 36, seed=i).save(data / f"{i}.png")
    photo_like(40, 40, seed=9).convert("RGB").save(data / "x.jpg", quality=95)
    cfg = {
        "name": "tiny", "model": {"scale": 2, "blocks_per_stage": 1, "growth": 4},
        "train_dirs": ["data"], "val_dir": "data", "val_images": 2, "val_crop": 32,
        "patch_size": 16, "batch_size": 2, "iterations": 6,
        "checkpoint_every": 3, "val_every": 3, "log_every": 3, "lr_milestones": [0.5],
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_resume_is_exact(tiny_config, tmp_path):
    straight = train(tiny_config, tmp_path / "a", progress=False)
    paused = train(tiny_config, tmp_path / "b", stop_at=3, progress=False)
    assert paused.iteration == 3
    resumed = train(tiny_config, tmp_path / "b", progress=False)
    assert resumed.iteration == straight.iteration == 6
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed.scheduler.get_last_lr() == straight.scheduler.get_last_lr()


def test_losses_decrease(tiny_config, tmp_path):
    config = TrainConfig.from_yaml(tiny_config)
    config.lr = 1e-3
    trainer = Trainer(config, tmp_path / "run")
    first = sum(trainer.step()["total"] for _ in range(3))
    for _ in range(30):
        trainer.step()
    last = sum(trainer.step()["total"] for _ in range(3))
    assert last < first


def test_log_and_validation_written(tiny_config, tmp_path):
    train(tiny_config, tmp_path / "run", progress=False)
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert log[0].startswith("iteration,")
    assert len(log) == 3  # header + iterations 3 and 6
    assert all(row.split(",")[7] for row in log[1:])  # val_psnr filled


def test_export_round_trip(tiny_config, tmp_path):
    trainer = train(tiny_config, tmp_path / "run", progress=False)
    out = tmp_path / "tiny.safetensors"
    record = export_checkpoint(tmp_path / "run" / "last.pt", out, half=False)
    assert record["iterations"] == 6 and record["parameters"] > 0
    loaded = zoo.load_model(str(out))
    for a, b in zip(trainer.model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("text", ["name: x\n", "- a list\n", "name: x\ntrain_dirs: [d]\nbogus: 1\n", ": : :"])
def test_bad_config_is_config_error(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        TrainConfig.from_yaml(path)


def test_missing_dataset_is_config_error(tiny_config, tmp_path):
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["train_dirs"] = ["nowhere"]
    tiny_config.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="not found"):
        train(tiny_config, tmp_path / "run", progress=False)


def test_resume_with_new_length_replans_schedule(tiny_config, tmp_path):
    train(tiny_config, tmp_path / "run", stop_at=2, progress=False)
    resumed = train(tiny_config, tmp_path / "run", iterations=4, progress=False)
    assert sorted(resumed.scheduler.milestones) == [2]  # lr_milestones [0.5] of 4
    assert resumed.scheduler.get_last_lr()[0] == pytest.approx(resumed.config.lr * resumed.config.lr_gamma)


def test_release_ships_fp16_weights_with_record(tiny_config, tmp_path, monkeypatch):
    from irncodec.train import release

    monkeypatch.setattr(zoo, "WEIGHTS_DIR", tmp_path / "zoo")
    monkeypatch.setattr(zoo, "MANIFEST", tmp_path / "zoo" / "manifest.json")
    (tmp_path / "zoo").mkdir()
    train(tiny_config, tmp_path / "run", progress=False)
    record = release(tmp_path / "run" / "last.pt", "tiny-rel", "test", eval_dir=tmp_path / "data")
    ev = record["evaluation"]
    assert ev["images"] == 4 and abs(ev["fp32"]["psnr"] - ev["fp16"]["psnr"]) < 1.0
    assert zoo.available_models()["tiny-rel"]["parameters"] == record["parameters"]
    assert zoo.load_model("tiny-rel").scale == 2
    zoo._load_cached.cache_clear()


def test_init_from_weights(tiny_config, tmp_path):
    first = train(tiny_config, tmp_path / "a", progress=False)
    weights = tmp_path / "w.safetensors"
    zoo.export(first.model, weights, half=False)
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["init_from"] = str(weights)
    tiny_config.write_text(yaml.safe_dump(cfg))
    config = TrainConfig.from_yaml(tiny_config)
    trainer = Trainer(config, tmp_path / "b")
    trainer.init_from(config.init_from)
    for a, b in zip(first.model.state_dict().values(), trainer.model.state_dict().values()):
        assert torch.equal(a, b)
    cfg["model"]["growth"] = 5
    tiny_config.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="architecture"):
        train(tiny_config, tmp_path / "c", progress=False)


def test_jpeg_proxy_in_the_loop_trains_and_resumes_exactly(tiny_config, tmp_path):
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg.update(lr_proxy="jpeg", lr_quality_range=[20, 90])
    tiny_config.write_text(yaml.safe_dump(cfg))
    straight = train(tiny_config, tmp_path / "a", progress=False)
    train(tiny_config, tmp_path / "b", stop_at=3, progress=False)
    resumed = train(tiny_config, tmp_path / "b", progress=False)
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


def test_jpeg_channel_changes_the_lr_and_passes_gradients():
    from irncodec.train import jpeg_channel

    from irncodec.imageio import image_to_tensor

    lr = image_to_tensor(photo_like(32, 24)).repeat(2, 1, 1, 1).requires_grad_()
    out = jpeg_channel((30, 30))(lr)
    assert 0.005 < (out - lr).abs().mean() < 0.1  # lossy, but still the same picture
    out.sum().backward()
    assert torch.isfinite(lr.grad).all() and lr.grad.abs().sum() > 0


@pytest.mark.parametrize("update", [{"lr_proxy": "webp"}, {"lr_proxy": "jpeg", "lr_quality_range": [90, 10]}])
def test_bad_proxy_options_are_config_errors(tiny_config, tmp_path, update):
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg.update(update)
    tiny_config.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError):
        train(tiny_config, tmp_path / "run", progress=False)
