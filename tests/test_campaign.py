"""Time-boxed training campaigns (irncodec.campaign) and the trainer's time and speed options."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from irncodec import zoo
from irncodec.campaign import LOGS_NAME, Campaign, build_data_pack, run_campaign
from irncodec.errors import ConfigError
from irncodec.train import TrainConfig, Trainer

from .conftest import photo_like

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_campaign(tmp_path) -> Path:
    """A campaign of two tiny runs (x2 lossless, x2 JPEG-aware) on a tiny data folder."""
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        photo_like(40, 36, seed=i).save(data / f"{i}.png")
    base = {"model": {"scale": 2, "blocks_per_stage": 1, "growth": 4}, "train_dirs": ["data"],
            "val_dir": "data", "val_images": 2, "val_crop": 32, "patch_size": 16, "batch_size": 2,
            "iterations": 1000, "checkpoint_every": 1000, "val_every": 1000, "log_every": 1,
            "learning_rate_milestones": [0.5, 0.8]}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({**base, "name": "tiny_a"}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({**base, "name": "tiny_b", "lr_proxy": "jpeg"}))
    campaign = {"minutes": 5, "checkpoint_minutes": 0.05, "overrides": {"threads": 1, "device": "cpu"},
                "runs": [{"config": "a.yaml"}, {"config": "b.yaml", "overrides": {"lr": 1e-3}}]}
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(campaign))
    return path


def _archive(out: Path) -> dict[str, bytes]:
    with tarfile.open(out / LOGS_NAME) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_entry_point_runs_every_run_and_returns_weights_and_logs(tiny_campaign, tmp_path):
    """The campaign's command line, as the GPU machine runs it, for 2 iterations."""
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "irncodec.campaign", "run", str(tiny_campaign), "--out", str(out),
                           "--work-dir", str(tmp_path / "work"), "--iterations", "2"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert {r["name"]: (r["iterations"], r["exit_code"]) for r in summary["runs"].values()} == {
        "tiny_a": (2, 0), "tiny_b": (2, 0)}
    assert sorted(p.name for p in out.iterdir()) == [LOGS_NAME, "tiny_a.safetensors", "tiny_b.safetensors"]
    model = zoo.load_model(str(out / "tiny_b.safetensors"))
    _, _, record = zoo.read_weights(out / "tiny_b.safetensors")
    assert model.scale == 2 and record["iterations"] == 2
    assert record["config"]["learning_rate"] == 1e-3 and record["config"]["lr_proxy"] == "jpeg"
    assert record["dtype"] == "float32"  # small enough to keep full precision
    logs = _archive(out)
    assert {"run0/log.csv", "run1/log.csv", "run0/console.log", "summary.json"} <= set(logs)

    # A second call continues each run from the weights the first returned (one of them here).
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (out / "tiny_b.safetensors").rename(earlier / "tiny_b.safetensors")
    again = run_campaign(tiny_campaign, tmp_path / "out2", tmp_path / "work2", iterations=1,
                         continue_from=earlier)
    assert again["continued"] == {"tiny_b": str(earlier / "tiny_b.safetensors")}
    continued = zoo.read_weights(tmp_path / "out2" / "tiny_b.safetensors")[2]
    assert continued["config"]["init_from"] == str((earlier / "tiny_b.safetensors").resolve())
    assert zoo.read_weights(tmp_path / "out2" / "tiny_a.safetensors")[2]["config"]["init_from"] is None
    assert json.loads(logs["summary.json"])["runs"]["b"]["iterations"] == 2


def test_a_new_campaign_in_the_same_work_folder_starts_its_logs_fresh(tiny_campaign, tmp_path):
    """The work folder of an earlier campaign (log, checkpoint, result) is not appended to."""
    work = tmp_path / "work"
    run_campaign(tiny_campaign, tmp_path / "out", work, iterations=2)
    (work / "run0" / "stale.txt").write_text("from before")
    summary = run_campaign(tiny_campaign, tmp_path / "out2", work, iterations=1)
    rows = (work / "run0" / "log.csv").read_text().splitlines()
    assert rows[0].startswith("iteration,") and [r.split(",")[0] for r in rows[1:]] == ["1"]
    assert not (work / "run0" / "stale.txt").exists()
    assert summary["runs"]["a"]["iterations"] == 1


def test_run_fitted_to_the_time_decays_its_rate_and_ends_in_time(tiny_campaign, tmp_path):
    out = tmp_path / "out"
    start = time.time()
    summary = run_campaign(tiny_campaign, out, tmp_path / "work", minutes=0.4, poll_s=1.0)
    assert time.time() - start < 0.4 * 60 + 15  # the budget, plus process start-up slack
    for result in summary["runs"].values():
        assert result["exit_code"] == 0
        assert result["steps_per_s"] > 0
        assert result["iterations"] > 12  # more than the steps it measured its pace with
    state = torch.load(tmp_path / "work" / "run0" / "last.pt", weights_only=True)
    # Both milestones passed before the end: the schedule was fitted to the time.
    assert state["scheduler"]["_last_lr"][0] == pytest.approx(2e-4 * 0.25)
    assert zoo.load_model(str(out / "tiny_a.safetensors")).scale == 2


def test_parallel_cap_and_a_failing_run_are_reported(tiny_campaign, tmp_path):
    spec = yaml.safe_load(tiny_campaign.read_text())
    spec["runs"].append({"config": "a.yaml", "overrides": {"precision": "fp8"}})
    tiny_campaign.write_text(yaml.safe_dump(spec))
    summary = run_campaign(tiny_campaign, tmp_path / "out", tmp_path / "work", iterations=1, parallel=1)
    codes = [r["exit_code"] for r in summary["runs"].values()]
    assert codes[:2] == [0, 0] and codes[2] != 0
    assert "precision must be one of" in (tmp_path / "work" / "run2" / "console.log").read_text()


@pytest.mark.parametrize("text, match", [
    ("runs: []\n", "non-empty list"),
    ("minutes: 3\n", "non-empty list"),
    ("runs: [{overrides: {}}]\n", "needs a 'config'"),
    ("runs: [{config: a.yaml}]\nbogus: 1\n", "bogus"),
])
def test_bad_campaign_files_are_config_errors(tmp_path, text, match):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        Campaign.from_yaml(path)


def test_shipped_campaigns_name_configs_that_load():
    from irncodec import zoo

    for name in ("gpu.yaml", "gpu_finetune.yaml", "cpu.yaml", "recon_temperature_ab.yaml"):
        campaign = Campaign.from_yaml(REPO / "campaign" / name)
        names = []
        for spec in campaign.runs + ([campaign.probe] if campaign.probe else []):
            config = TrainConfig.from_yaml(spec["config"], campaign.run_config(spec))
            assert config.device in ("auto", "cpu")
            assert config.init_from is None or config.init_from in zoo.available_models()
            names.append(config.name)
        assert len(set(names)) == len(names), "each run writes its own weights file"
    gpu = Campaign.from_yaml(REPO / "campaign" / "gpu.yaml")
    assert gpu.overrides["train_dirs"] == [str((REPO / ".campaign" / "data" / "train").resolve())]
    assert gpu.minutes * 60 < 600 - 60  # one device command, with room for start-up and copying back


def test_data_pack_copies_jpegs_and_crops_lossless_photos_within_budget(tmp_path):
    src, val = tmp_path / "src", tmp_path / "val"
    src.mkdir()
    val.mkdir()
    jpeg_bytes = []
    for i in range(2):
        buf = io.BytesIO()
        photo_like(120, 90, seed=i).save(buf, "JPEG", quality=90)
        jpeg_bytes.append(buf.getvalue())
        (src / f"j{i}.jpg").write_bytes(buf.getvalue())
    for i in range(2):
        photo_like(400, 300, seed=10 + i).save(src / f"p{i}.png")
    for i in range(5):
        photo_like(300, 280, seed=20 + i).save(val / f"v{i}.png")
    budget_mb = (sum(map(len, jpeg_bytes)) + 4 * 150_000 + 2 * 60_000) / 1e6
    manifest = build_data_pack([src], tmp_path / "pack", budget_mb, val_dir=val, lossless_floor=96)
    pack = tmp_path / "pack"
    train = sorted((pack / "train").iterdir())
    assert [p.suffix for p in train] == [".jpg", ".jpg", ".webp", ".webp"]
    assert [p.read_bytes() for p in train[:2]] == jpeg_bytes  # byte for byte
    assert manifest["bytes"] <= budget_mb * 1e6
    for path, original in zip(train[2:], ("p0.png", "p1.png")):
        crop = Image.open(path).convert("RGB")
        assert crop.width == crop.height < 300  # cropped to fit its share
        full = Image.open(src / original).convert("RGB")
        left, top = (full.width - crop.width) // 2, (full.height - crop.height) // 2
        assert crop.tobytes() == full.crop((left, top, left + crop.width, top + crop.height)).tobytes()  # lossless
    assert sorted(p.name for p in (pack / "val").iterdir()) == ["v0.png", "v1.png", "v2.png", "v3.png"]
    assert Image.open(pack / "val" / "v0.png").size == (256, 256)
    import hashlib

    for rel, entry in manifest["files"].items():
        assert hashlib.sha256((pack / rel).read_bytes()).hexdigest() == entry["sha256"]
    assert manifest["left_out"] == []
    with pytest.raises(ConfigError) as info:
        build_data_pack([src], tmp_path / "pack2", 0.1, val_dir=val)
    assert str(info.value).startswith("the validation crops take 0.") and str(info.value).endswith(
        " MB, over the 0.1 MB budget")
    with pytest.raises(ConfigError) as info:
        build_data_pack([src], tmp_path / "pack2", 0.001)
    assert str(info.value) == "no training photo fits in the 0.001 MB budget"
    assert not (tmp_path / "pack2").exists()  # nothing half-built left behind


def test_data_pack_keeps_room_for_lossless_crops_and_an_evenly_spaced_subset_of_jpegs(tmp_path):
    """Lossless photos keep a crop of ``lossless_floor`` px; the JPEGs that do not fit in
    the rest are left out evenly through the list, never all from its end."""
    src = tmp_path / "src"
    src.mkdir()
    sizes = []
    for i in range(6):
        photo_like(120, 90, seed=i).save(src / f"j{i}.jpg", quality=90)
        sizes.append((src / f"j{i}.jpg").stat().st_size)
    photo_like(400, 300, seed=10).save(src / "p0.png")
    floor = io.BytesIO()
    photo_like(400, 300, seed=10).crop((72, 22, 328, 278)).save(floor, "WEBP", lossless=True, quality=80, method=4)
    # room for the 256 px crop and exactly three of the JPEGs, chosen evenly: 0, 2, 4
    budget = floor.tell() + sizes[0] + sizes[2] + sizes[4]
    manifest = build_data_pack([src], tmp_path / "pack", (budget + 1) / 1e6)
    train = sorted(p.name for p in (tmp_path / "pack" / "train").iterdir())
    assert train == ["c0000-j0.jpg", "c0002-j2.jpg", "c0004-j4.jpg", "l0000-p0.webp"]
    assert manifest["left_out"] == ["j1.jpg", "j3.jpg", "j5.jpg"]
    assert manifest["files"]["train/l0000-p0.webp"]["how"] == "lossless webp centre crop 256x256"
    assert manifest["bytes"] <= budget + 1


def _tiny_trainer(tmp_path, overrides: dict | None = None) -> Trainer:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    for i in range(2):
        photo_like(40, 36, seed=i).save(data / f"{i}.png")
    cfg = {"name": "t", "model": {"scale": 2, "blocks_per_stage": 1, "growth": 4}, "train_dirs": [str(data)],
           "patch_size": 16, "batch_size": 2, "iterations": 100, "learning_rate_milestones": [0.5, 0.8],
           "checkpoint_every": 1000, "log_every": 1000, "val_every": 1000}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return Trainer(TrainConfig.from_yaml(path, overrides), tmp_path / "run")


def test_set_length_keeps_decays_already_made(tmp_path):
    trainer = _tiny_trainer(tmp_path)
    trainer.run(progress=False, stop_at=60)  # past the first milestone (50)
    assert trainer.scheduler.get_last_lr()[0] == pytest.approx(1e-4)
    trainer.set_length(1000)  # would put the milestone at 500, undoing the decay
    assert trainer.config.iterations == 120  # grown only until 0.5 * length still lies behind
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    trainer.set_length(70)  # shrinking passes the second milestone (56) at once
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(5e-5)


def test_deadline_stops_with_a_checkpoint_and_calls_the_hook(tmp_path):
    trainer = _tiny_trainer(tmp_path)
    seen = []
    trainer.run(progress=False, deadline=time.monotonic() - 1, on_checkpoint=lambda t: seen.append(t.iteration))
    assert trainer.iteration == 1 and seen == [1]
    assert torch.load(trainer.checkpoint_path, weights_only=True)["iteration"] == 1


@pytest.mark.parametrize("overrides", [{"precision": "bf16"}, {"channels_last": True}])
def test_speed_options_train(tmp_path, overrides):
    trainer = _tiny_trainer(tmp_path, overrides)
    losses = [trainer.step()["total"] for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(losses)))
    # The options change how the network computes, not what the losses are.
    reference = _tiny_trainer(tmp_path / "ref")
    torch.manual_seed(0)
    hr = torch.rand(2, 3, 16, 16)
    reference.model.load_state_dict(trainer.model.state_dict())
    torch.manual_seed(1)  # the same z draws for both
    ours = trainer.losses(hr.contiguous(memory_format=torch.channels_last))
    torch.manual_seed(1)
    theirs = reference.losses(hr)
    for key in ("guide", "recon"):
        assert ours[key].item() == pytest.approx(theirs[key].item(), rel=0.05), key


def test_unknown_precision_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="precision"):
        _tiny_trainer(tmp_path, {"precision": "fp8"})


def test_probe_adopts_only_allowed_options_that_pay():
    from irncodec.campaign import adopt_from_probe

    results = [{"variant": "baseline", "s_per_step": 1.0},
               {"variant": {"channels_last": True}, "s_per_step": 0.8},
               {"variant": {"precision": "bf16"}, "s_per_step": 0.3}]
    assert adopt_from_probe(results, ["channels_last"]) == {"channels_last": True}
    assert adopt_from_probe(results, []) == {}
    results[1]["s_per_step"] = 0.95  # under 10 % faster: not worth a change
    assert adopt_from_probe(results, ["channels_last"]) == {}
    assert adopt_from_probe(None, ["channels_last"]) == {}


def test_probe_runs_before_the_runs_and_its_result_is_in_the_summary(tiny_campaign, tmp_path):
    spec = yaml.safe_load(tiny_campaign.read_text())
    spec["runs"] = spec["runs"][:1]
    spec["probe"] = {"config": "a.yaml", "steps": 2, "variants": [{"channels_last": True}],
                     "adopt": ["channels_last"], "max_s": 120}
    tiny_campaign.write_text(yaml.safe_dump(spec))
    summary = run_campaign(tiny_campaign, tmp_path / "out", tmp_path / "work", minutes=0.6, poll_s=1.0)
    assert [r["variant"] for r in summary["probe"]] == ["baseline", {"channels_last": True}]
    assert all(r["s_per_step"] > 0 for r in summary["probe"])
    assert summary["runs"]["a"]["exit_code"] == 0
