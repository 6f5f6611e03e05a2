"""CPU threads: the CLI uses the CPUs the process may run on, the library only what a call asks for."""

from __future__ import annotations

import os

import pytest
import torch
from click.testing import CliRunner

import irncodec
from irncodec import pipeline, threads
from irncodec.cli import main
from irncodec.errors import ConfigError

from .conftest import photo_like


def test_available_cpus_follows_the_affinity_and_a_cgroup_quota(tmp_path, monkeypatch):
    cpu_max = tmp_path / "cpu.max"
    monkeypatch.setattr(threads, "CGROUP_CPU_MAX", cpu_max)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7})
    assert threads.available_cpus() == 8  # no cgroup file
    cpu_max.write_text("max 100000\n")
    assert threads.available_cpus() == 8
    cpu_max.write_text("250000 100000\n")  # 2.5 CPUs of quota: 3 threads
    assert threads.available_cpus() == 3
    cpu_max.write_text("5000 100000\n")
    assert threads.available_cpus() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    cpu_max.write_text("max 100000\n")
    assert threads.available_cpus() == 1


def test_limited_threads_restores_torchs_setting():
    before = torch.get_num_threads()
    with threads.limited_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), threads.limited_threads(1):
        raise RuntimeError
    assert torch.get_num_threads() == before
    with threads.limited_threads(None):
        assert torch.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_bad_thread_counts_are_config_errors(bad, tiny_weights):
    with pytest.raises(ConfigError, match="threads must be a positive integer"):
        irncodec.encode(photo_like(8, 8), model=tiny_weights[2], threads=bad)


def test_library_calls_use_the_threads_asked_for_and_put_them_back(tiny_weights, monkeypatch):
    seen = []
    real = pipeline.downscale
    monkeypatch.setattr(pipeline, "downscale", lambda *a, **k: seen.append(torch.get_num_threads()) or real(*a, **k))
    before = torch.get_num_threads()
    data = irncodec.encode(photo_like(16, 12), model=tiny_weights[2], threads=1)
    assert seen == [1] and torch.get_num_threads() == before
    assert data == irncodec.encode(photo_like(16, 12), model=tiny_weights[2])  # threads change no byte
    assert irncodec.decode(data, model=tiny_weights[2], threads=1).size == (16, 12)
    assert torch.get_num_threads() == before


def test_cli_threads_option(tmp_path, tiny_weights, monkeypatch):
    seen = []
    real = pipeline.downscale
    monkeypatch.setattr(pipeline, "downscale", lambda *a, **k: seen.append(torch.get_num_threads()) or real(*a, **k))
    monkeypatch.setattr(threads, "available_cpus", lambda: 1)
    png, irn = tmp_path / "a.png", tmp_path / "a.irn"
    photo_like(16, 12).save(png)
    runner = CliRunner()
    for args, expected in ((["--threads", "2"], 2), ([], 1)):
        result = runner.invoke(main, ["encode", str(png), str(irn), "-m", tiny_weights[2], "-f", *args])
        assert result.exit_code == 0, result.output
        assert seen.pop() == expected
    result = runner.invoke(main, ["decode", str(irn), str(tmp_path / "o.png"), "-m", tiny_weights[2], "--threads", "1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["encode", str(png), str(irn), "--threads", "0"])
    assert result.exit_code == 2 and "--threads" in result.output
