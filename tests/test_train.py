"""The trainer: losses fall, checkpoints resume exactly, export loads back."""

import dataclasses
import re
from pathlib import Path

import pytest
import torch
import yaml

from irncodec import zoo
from irncodec.errors import ConfigError
from irncodec.models import IRN, count_parameters
from irncodec.train import TrainConfig, Trainer, export_checkpoint, load_compatible, train

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
        "checkpoint_every": 3, "val_every": 3, "log_every": 3, "learning_rate_milestones": [0.5],
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
    config.learning_rate = 1e-3
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
    assert sorted(resumed.scheduler.milestones) == [2]  # learning_rate_milestones [0.5] of 4
    decayed = resumed.config.learning_rate * resumed.config.learning_rate_gamma
    assert resumed.scheduler.get_last_lr()[0] == pytest.approx(decayed)


def test_release_ships_fp16_weights_with_record(tiny_config, tmp_path, monkeypatch):
    from irncodec.train import release

    monkeypatch.setattr(zoo, "WEIGHTS_DIR", tmp_path / "zoo")
    monkeypatch.setattr(zoo, "MANIFEST", tmp_path / "zoo" / "manifest.json")
    (tmp_path / "zoo").mkdir()
    train(tiny_config, tmp_path / "run", progress=False)
    record = release(tmp_path / "run" / "last.pt", "tiny-rel", "test", eval_dir=tmp_path / "data")
    ev = record["evaluation"]
    # float16 weights decode as float32 ones do: measured 0.0 dB apart here, 1e-4 dB in the
    # shipped records; 0.01 dB is the margin for another CPU's rounding
    assert ev["images"] == 4 and abs(ev["fp32"]["psnr"] - ev["fp16"]["psnr"]) < 0.01
    assert zoo.available_models()["tiny-rel"]["parameters"] == record["parameters"]
    assert zoo.load_model("tiny-rel").scale == 2
    with pytest.raises(ConfigError, match="already shipped"):
        release(tmp_path / "run" / "last.pt", "tiny-rel", "again")
    # float32 weights (what a campaign returns) ship like the checkpoint they came from
    weights = tmp_path / "w.safetensors"
    export_checkpoint(tmp_path / "run" / "last.pt", weights, half=False)
    again = release(weights, "tiny-rel-2", "from weights", eval_dir=tmp_path / "data")
    assert again["iterations"] == record["iterations"] and again["evaluation"] == ev
    shipped, from_weights = (zoo.read_weights(zoo.WEIGHTS_DIR / f"{n}.safetensors")[1]
                             for n in ("tiny-rel", "tiny-rel-2"))
    assert all(torch.equal(shipped[k], from_weights[k]) for k in shipped)
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
    # how a model decodes is not architecture: weights decoded at another temperature seed it too
    sampled = IRN(dataclasses.replace(first.model.config, decode_temperature=1.0))
    sampled.load_state_dict(first.model.state_dict())
    load_compatible(trainer.model, sampled)
    cfg["model"]["growth"] = 3  # a model can grow from trained weights, never shrink
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


#: The bits a 16x16 LR crop's estimate may take: JPEG's is one 4:2:0 MCU, at least
#: the headers' bits, at most a few thousand; WebP's has no constant term.
RATE_BOUNDS = {"jpeg": (140, 5000), "webp": (0, 5000)}


@pytest.mark.parametrize("proxy", ["jpeg", "webp"])
def test_rate_aware_training_logs_rate_steers_the_model_and_resumes_exactly(tiny_config, tmp_path, proxy):
    """lambda_rate through a JPEG or WebP channel: the rate is logged, changes the updates, and resumes exactly.

    (That the rate's gradient shrinks real files is tested with the estimates themselves.)
    """
    import csv

    _with(tiny_config, lr_proxy=proxy, lr_quality_range=[50, 50], patch_size=32)
    plain = train(tiny_config, tmp_path / "plain", progress=False)
    _with(tiny_config, lambda_rate=0.5)
    aware = train(tiny_config, tmp_path / "aware", progress=False)
    train(tiny_config, tmp_path / "resumed", stop_at=3, progress=False)
    resumed = train(tiny_config, tmp_path / "resumed", progress=False)
    for a, b in zip(aware.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(aware.model.state_dict().values(),
                                                       plain.model.state_dict().values()))
    with open(tmp_path / "aware" / "log.csv") as f:
        rates = [float(row["rate"]) for row in csv.DictReader(f)]
    low, high = RATE_BOUNDS[proxy]
    assert rates and all(low < r < high for r in rates), rates


def test_jpeg_channel_changes_the_lr_and_passes_gradients():
    from irncodec.channels import make_channel
    from irncodec.tensors import image_to_tensor

    lr = image_to_tensor(photo_like(32, 24)).repeat(2, 1, 1, 1).requires_grad_()
    out, bits = make_channel("jpeg", (30, 30))(lr)
    assert bits is None  # no rate unless asked for
    assert 0.005 < (out - lr).abs().mean() < 0.1  # lossy, but still the same picture
    out.sum().backward()
    assert torch.isfinite(lr.grad).all() and lr.grad.abs().sum() > 0


@pytest.mark.parametrize("update", [{"lr_proxy": "avif"}, {"lr_proxy": "jpeg", "lr_quality_range": [90, 10]},
                                    {"lambda_rate": 0.1},
                                    {"lr_proxy": "jpeg", "lambda_rate": -1.0},
                                    {"lr_proxy": None, "model": {"scale": 2, "blocks_per_stage": 1, "growth": 4,
                                                                 "architecture": "sain"}}])
def test_bad_proxy_options_are_config_errors(tiny_config, tmp_path, update):
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg.update(update)
    tiny_config.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError):
        train(tiny_config, tmp_path / "run", progress=False)


def _with(config_path: Path, **changes) -> Path:
    cfg = yaml.safe_load(config_path.read_text())
    cfg.update(changes)
    config_path.write_text(yaml.safe_dump(cfg))
    return config_path


def test_real_codec_channel_is_exact_pillow_forward_with_proxy_gradient():
    from irncodec.channels import make_channel, real_roundtrip
    from irncodec.tensors import image_to_tensor

    lr = image_to_tensor(photo_like(32, 24)).requires_grad_()
    for kind in ("jpeg", "webp"):
        out, _ = make_channel(kind, (40, 40), real_codec=True)(lr)
        assert torch.equal(out.detach(), real_roundtrip(lr, kind, 40))
        (grad,) = torch.autograd.grad(out.sum(), lr)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_webp_training_validates_through_real_webp_and_resumes_exactly(tiny_config, tmp_path):
    _with(tiny_config, lr_proxy="webp", lr_quality_range=[40, 90], val_qualities=[50])
    straight = train(tiny_config, tmp_path / "a", progress=False)
    train(tiny_config, tmp_path / "b", stop_at=3, progress=False)
    resumed = train(tiny_config, tmp_path / "b", progress=False)
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    header, row = (tmp_path / "a" / "log.csv").read_text().splitlines()[:2]
    assert header.endswith("val_psnr,val_lr_psnr,val_psnr_webp50,val_bpp_webp50")
    psnr, bpp = (float(v) for v in row.split(",")[-2:])
    assert psnr > 5 and 0 < bpp < 24  # the LR file's bits per HR pixel, headers and all


SAIN = {"scale": 2, "blocks_per_stage": 2, "growth": 4, "z_temperature": 0.1,
        "architecture": "sain", "simulator_blocks": 1, "z_prior": "mixture", "mixture_components": 3}


def test_sain_model_trains_with_simulation_loss_and_resumes_exactly(tiny_config, tmp_path):
    _with(tiny_config, model=SAIN, lr_proxy="jpeg", val_qualities=[])
    straight = train(tiny_config, tmp_path / "a", progress=False)
    train(tiny_config, tmp_path / "b", stop_at=3, progress=False)
    resumed = train(tiny_config, tmp_path / "b", progress=False)
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert "sim" in straight.step()
    assert (tmp_path / "b" / "log.csv").read_text().splitlines()[0].split(",")[7] == "sim"
    weights = tmp_path / "sain.safetensors"
    export_checkpoint(tmp_path / "b" / "last.pt", weights)
    model = zoo.load_model(str(weights))
    assert model.config.architecture == "sain" and model.prior.components == 3


def test_plain_irn_seeds_a_sain_model_that_behaves_identically(tiny_config, tmp_path):
    _with(tiny_config, model={**SAIN, "architecture": "irn", "simulator_blocks": 0, "z_prior": "gaussian"})
    plain = train(tiny_config, tmp_path / "a", progress=False).model
    weights = tmp_path / "plain.safetensors"
    zoo.export(plain, weights, half=False)
    _with(tiny_config, model=SAIN, lr_proxy="jpeg", init_from=str(weights))
    sain = Trainer(TrainConfig.from_yaml(tiny_config), tmp_path / "b")
    sain.init_from(str(weights))
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        lr_plain, _ = plain.eval()(x)
        out = sain.model.eval().rescale(x)
        assert torch.allclose(out.lr, lr_plain, atol=1e-6) and torch.allclose(out.lr_simulated, lr_plain, atol=1e-6)
        assert torch.allclose(sain.model.upscale(lr_plain, 0), plain.upscale(lr_plain, 0), atol=1e-5)
    sain_weights = tmp_path / "sain.safetensors"
    zoo.export(sain.model, sain_weights, half=False)
    _with(tiny_config, model={**SAIN, "architecture": "irn", "simulator_blocks": 0, "z_prior": "gaussian"},
          init_from=str(sain_weights))
    with pytest.raises(ConfigError, match="cannot seed"):
        train(tiny_config, tmp_path / "c", progress=False)


@pytest.mark.parametrize("model", [{"architecture": "irn", "simulator_blocks": 0, "z_prior": "gaussian"}, {}],
                         ids=["irn", "sain"])
def test_a_larger_model_grows_from_trained_weights_and_computes_the_same(tiny_config, tmp_path, model):
    small_config = {**SAIN, **model}
    _with(tiny_config, model=small_config, lr_proxy="jpeg" if not model else None)
    small = train(tiny_config, tmp_path / "a", progress=False).model.eval()
    weights = tmp_path / "small.safetensors"
    zoo.export(small, weights, half=False)
    _with(tiny_config, model={**small_config, "blocks_per_stage": 3, "growth": 6}, init_from=str(weights))
    grown = train(tiny_config, tmp_path / "b", progress=False, stop_at=0).model.eval()
    assert count_parameters(grown) > 2 * count_parameters(small)
    x = torch.rand(2, 3, 16, 20)
    with torch.no_grad():
        before, after = small.rescale(x), grown.rescale(x)
        for a, b in zip(before, after):
            assert (a - b).abs().max() < 1e-6
        assert (small.inverse(before.lr, before.z) - grown.inverse(before.lr, before.z)).abs().max() < 1e-6
    # the grown model trains, and the new weights move
    grown_run = train(tiny_config, tmp_path / "c", progress=False).model
    new_block = grown_run.inn.module_list[2]  # after the Haar step: trained block 0, this new one, trained block 1
    assert new_block.phi.out.weight.abs().max() > 0


def _ddp_worker(rank: int, world: int, port: int, config: str, run_dir: str, stop_at, out: str) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    trainer = train(config, run_dir, progress=False, stop_at=stop_at)
    torch.save(trainer.model.state_dict(), f"{out}.{rank}")
    torch.distributed.destroy_process_group()


def _run_ddp(config: Path, run_dir: Path, out: Path, stop_at=None, world: int = 2) -> list[dict]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_ddp_worker, (world, port, str(config), str(run_dir), stop_at, str(out)),
                                nprocs=world)
    return [torch.load(f"{out}.{r}", weights_only=True) for r in range(world)]


def test_ddp_two_processes_stay_in_sync_and_resume_exactly(tiny_config, tmp_path):
    _with(tiny_config, batch_size=4, lr_proxy="jpeg", val_qualities=[])
    straight = _run_ddp(tiny_config, tmp_path / "a", tmp_path / "a.pt")
    for a, b in zip(*(s.values() for s in straight)):
        assert torch.equal(a, b)  # every rank holds the same model
    single = train(tiny_config, tmp_path / "single", progress=False).model.state_dict()
    assert any(not torch.equal(a, b) for a, b in zip(single.values(), straight[0].values()))
    assert len(torch.load(tmp_path / "a" / "last.pt", weights_only=True)["rank_rng"]) == 2
    _run_ddp(tiny_config, tmp_path / "b", tmp_path / "b.pt", stop_at=3)
    resumed = _run_ddp(tiny_config, tmp_path / "b", tmp_path / "b.pt")
    for a, b in zip(straight[0].values(), resumed[0].values()):
        assert torch.equal(a, b)
    assert len((tmp_path / "b" / "log.csv").read_text().splitlines()) == 3  # rank 0 alone logs


def test_batch_must_split_over_processes(tiny_config, tmp_path, monkeypatch):
    import irncodec.train.trainer as training

    monkeypatch.setattr(training, "distributed_context", lambda: (0, 3))
    with pytest.raises(ConfigError, match="divide"):
        Trainer(TrainConfig.from_yaml(tiny_config), tmp_path / "run")


ENTROPY = {"scale": 2, "blocks_per_stage": 1, "growth": 4, "lr_coder": "hyperprior",
           "coder_channels": 8, "coder_filter_channels": 4}


def test_entropy_model_trains_for_rate_and_resumes_exactly(tiny_config, tmp_path):
    _with(tiny_config, model=ENTROPY, lambda_rate=0.05, coder_learning_rate=5e-4, coder_warmup=2)
    straight = train(tiny_config, tmp_path / "a", progress=False)
    train(tiny_config, tmp_path / "b", stop_at=3, progress=False)
    resumed = train(tiny_config, tmp_path / "b", progress=False)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed.aux_optimizer.state_dict()["state"]  # the aux optimizer was resumed too
    header, row = (tmp_path / "a" / "log.csv").read_text().splitlines()[:2]
    assert header.endswith("rate,thumb,aux,val_psnr,val_lr_psnr,val_psnr_entropy,val_bpp_entropy")
    values = dict(zip(header.split(","), row.split(",")))
    assert float(values["rate"]) > 0 and float(values["val_bpp_entropy"]) > 0
    weights = tmp_path / "entropy.safetensors"
    export_checkpoint(tmp_path / "a" / "last.pt", weights)
    model = zoo.load_model(str(weights))
    assert model.lr_coder is not None and model.lr_coder.is_ready


def test_coder_warmup_keeps_the_rescaler_still(tiny_config, tmp_path):
    _with(tiny_config, model=ENTROPY, lambda_rate=0.05, coder_warmup=2)
    trainer = Trainer(TrainConfig.from_yaml(tiny_config), tmp_path / "run")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.step()
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("inn."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("lr_coder.analysis"))


@pytest.mark.parametrize("update,match", [
    ({"lambda_rate": 0.0}, "lambda_rate"),
    ({"lambda_rate": 0.1, "lr_proxy": "jpeg"}, "leave lr_proxy out"),
])
def test_bad_entropy_options_are_config_errors(tiny_config, tmp_path, update, match):
    _with(tiny_config, model=ENTROPY, **update)
    with pytest.raises(ConfigError, match=match):
        train(tiny_config, tmp_path / "run", progress=False)


def test_plain_irn_seeds_an_entropy_model(tiny_config, tmp_path):
    plain = train(tiny_config, tmp_path / "a", progress=False).model
    weights = tmp_path / "plain.safetensors"
    zoo.export(plain, weights, half=False)
    _with(tiny_config, model=ENTROPY, lambda_rate=0.05)
    trainer = Trainer(TrainConfig.from_yaml(tiny_config), tmp_path / "b")
    trainer.init_from(str(weights))
    for name, value in plain.state_dict().items():
        assert torch.equal(trainer.model.state_dict()[name], value), name


def test_ddp_trains_an_entropy_model_in_sync(tiny_config, tmp_path):
    _with(tiny_config, model=ENTROPY, batch_size=4, lambda_rate=0.05, iterations=3, val_every=3)
    states = _run_ddp(tiny_config, tmp_path / "a", tmp_path / "a.pt")
    for name, a in states[0].items():
        assert torch.equal(a, states[1][name]), name


CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_load_and_build(path):
    """Every config in configs/ parses, builds its model, and starts from something that exists."""
    config = TrainConfig.from_yaml(path)
    model = IRN(config.model)
    assert model.scale == config.model.scale
    if config.init_from and not config.init_from.endswith(".safetensors"):
        assert config.init_from in zoo.available_models(), config.init_from
        load_compatible(model, zoo.load_model(config.init_from))  # can seed it (or grow into it)


def test_old_learning_rate_keys_are_read_under_their_new_names(tiny_config, tmp_path):
    raw = yaml.safe_load(tiny_config.read_text())
    raw.pop("learning_rate_milestones", None)
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({**raw, "lr": 3e-4, "lr_milestones": [0.25], "lr_gamma": 0.1,
                                   "coder_lr": 1e-3, "aux_lr": 2e-3}))
    config = TrainConfig.from_yaml(old)
    assert (config.learning_rate, config.learning_rate_milestones, config.learning_rate_gamma,
            config.coder_learning_rate, config.aux_learning_rate) == (3e-4, [0.25], 0.1, 1e-3, 2e-3)
    both = tmp_path / "both.yaml"
    both.write_text(yaml.safe_dump({**raw, "lr": 3e-4, "learning_rate": 1e-4}))
    with pytest.raises(ConfigError, match="learning_rate or its old name lr"):
        TrainConfig.from_yaml(both)


@pytest.mark.parametrize("update", [{}, {"lr_proxy": "jpeg", "lambda_rate": 0.1},
                                    {"model": ENTROPY, "lambda_rate": 0.05},
                                    {"model": {"scale": 2, "blocks_per_stage": 1, "growth": 4,
                                               "architecture": "sain", "simulator_blocks": 1,
                                               "z_prior": "mixture"}, "lr_proxy": "jpeg"}])
def test_log_columns_follow_the_loss_terms(tiny_config, tmp_path, update):
    """The log's loss columns are the terms the step computes, each with a weight in the config."""
    from irncodec.train import WEIGHTS, irn_losses, loss_terms, weighted_total

    _with(tiny_config, **update)
    trainer = Trainer(TrainConfig.from_yaml(tiny_config), tmp_path / "run")
    hr = torch.rand(2, 3, 16, 16)
    losses = irn_losses(trainer.model, hr, trainer.lr_channel)
    assert list(losses) == loss_terms(trainer.config)
    assert set(losses) <= set(WEIGHTS)
    fields = trainer.log_fields()
    assert fields[fields.index("total") + 1:][:len(losses)] == list(losses)
    expected = sum(getattr(trainer.config, WEIGHTS[k]) * v for k, v in losses.items())
    assert torch.allclose(weighted_total(losses, trainer.config), expected)


def test_ddp_trains_an_entropy_coder_with_its_quantiles_outside_ddp(tiny_config, tmp_path):
    """The quantiles learn from the auxiliary loss alone: DDP must not wait for their
    gradients, and every rank must still end with the same quantiles."""
    _with(tiny_config, batch_size=4, model=ENTROPY, lambda_rate=0.05, val_dir=None, iterations=3)
    states = _run_ddp(tiny_config, tmp_path / "run", tmp_path / "e.pt")
    before = Trainer(TrainConfig.from_yaml(tiny_config), tmp_path / "fresh").model.state_dict()
    quantiles = [k for k in states[0] if k.endswith(".quantiles")]
    assert quantiles
    for key in quantiles:
        assert torch.equal(states[0][key], states[1][key])
        assert not torch.equal(states[0][key], before[key])  # the aux optimizer moved them
    for a, b in zip(*(s.values() for s in states)):
        assert torch.equal(a, b)


def test_enlarged_crops_are_the_codecs_resampling(tmp_path):
    """With enlarge_range, a crop is a region 1/factor the patch size resampled up with the
    codec's filter (Lanczos), so the network trains on what resampled scales give it."""
    import numpy as np
    from PIL import Image

    from irncodec.data import RandomCrops

    photo_like(40, 36, seed=1).save(tmp_path / "a.png")
    plain = RandomCrops([tmp_path], 16, seed=3).crop()
    crops = RandomCrops([tmp_path], 16, seed=3, enlarge_range=[2.0, 2.0])
    source = np.asarray(Image.open(tmp_path / "a.png").convert("RGB"))
    crop = crops.crop()
    assert crop.shape == plain.shape == (3, 16, 16) and crop.dtype == torch.uint8
    # the same draw with the geometry undone: find the 8x8 region whose Lanczos enlargement it is
    regions = {(t, x): Image.fromarray(source[t:t + 8, x:x + 8]).resize((16, 16), Image.Resampling.LANCZOS)
               for t in range(36 - 7) for x in range(40 - 7)}
    views = [torch.rot90(crop, -k, (1, 2)) for k in range(4)]
    views += [v.flip(2) for v in views]
    found = [key for key, img in regions.items() for v in views
             if np.array_equal(np.asarray(img), v.permute(1, 2, 0).numpy())]
    assert found, "the crop is no enlarged region of the image"
    with pytest.raises(ValueError, match="enlarge_range"):
        RandomCrops([tmp_path], 16, enlarge_range=[0.5, 2.0])


def test_enlarged_crops_train_and_resume_exactly(tiny_config, tmp_path):
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["enlarge_range"] = [1.0, 1.8]
    tiny_config.write_text(yaml.safe_dump(cfg))
    straight = train(tiny_config, tmp_path / "a", progress=False)
    train(tiny_config, tmp_path / "b", stop_at=3, progress=False)
    resumed = train(tiny_config, tmp_path / "b", progress=False)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_recon_temperature_sets_the_z_the_reconstruction_is_decoded_with(tiny_config, tmp_path):
    """At 0 the recon loss is the reconstruction from the prior's mean (what decoding uses by
    default), the same every step; at the default 1 each step draws a fresh z."""
    from irncodec.metrics import quantize_8bit

    hr = torch.rand(2, 3, 16, 16)
    _with(tiny_config, recon_temperature=0.0)
    trainer = Trainer(TrainConfig.from_yaml(tiny_config), tmp_path / "mean")
    model = trainer.model
    with torch.no_grad():
        lr = quantize_8bit(model.rescale(hr)[0])
        expected = (model.inverse(lr, model.sample_z(lr, 0.0)) - hr).abs().sum() / 2
        first, second = trainer.losses(hr)["recon"], trainer.losses(hr)["recon"]
    assert torch.allclose(first, expected, atol=1e-4) and torch.equal(first, second)

    _with(tiny_config, recon_temperature=1.0)
    sampled = Trainer(TrainConfig.from_yaml(tiny_config), tmp_path / "sampled")
    with torch.no_grad():
        assert not torch.equal(sampled.losses(hr)["recon"], sampled.losses(hr)["recon"])
    assert TrainConfig.from_yaml(tiny_config).recon_temperature == 1.0

    _with(tiny_config, recon_temperature=-0.5)
    with pytest.raises(ConfigError, match=re.escape("recon_temperature must be >= 0, got -0.5")):
        Trainer(TrainConfig.from_yaml(tiny_config), tmp_path / "negative")


@pytest.mark.parametrize("decode_temperature", [0.0, 1.0])
def test_validation_decodes_z_as_the_codec_does(tiny_config, tmp_path, decode_temperature):
    """Validation measures what decoding gives: z at the model's decode_temperature (the
    prior's mean by default), lossless and through the real codec alike."""
    from irncodec.train.evaluation import evaluate

    model = {"scale": 2, "blocks_per_stage": 1, "growth": 4, "decode_temperature": decode_temperature}
    _with(tiny_config, model=model, lr_proxy="jpeg", val_qualities=[50])
    trainer = Trainer(TrainConfig.from_yaml(tiny_config), tmp_path / "run")
    for _ in range(2):
        trainer.step()
    row = trainer.validate()
    images = trainer._val_images
    for t in (0.0, 1.0):
        lossless, coded = evaluate(trainer.model, images, t), evaluate(trainer.model, images, t, "jpeg", 50)
        assert (row["val_psnr"] == lossless["psnr"]) == (t == decode_temperature)
        assert (row["val_psnr_jpeg50"] == coded["psnr"]) == (t == decode_temperature)
