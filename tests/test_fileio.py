"""Atomic outputs: complete or absent, never half-written."""

import pytest

from irncodec.errors import OutputError
from irncodec.fileio import atomic_output, atomic_write_bytes


def test_write_and_replace(tmp_path):
    path = tmp_path / "out.bin"
    atomic_write_bytes(path, b"one")
    atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two" and list(tmp_path.iterdir()) == [path]


def test_failure_leaves_nothing_and_keeps_old_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(path) as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    assert path.read_bytes() == b"old" and list(tmp_path.iterdir()) == [path]


def test_interrupt_leaves_nothing(tmp_path):
    path = tmp_path / "out.bin"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(path) as f:
            f.write(b"partial")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["missing/out.bin", "."])
def test_unwritable_target_is_output_error(tmp_path, where):
    with pytest.raises(OutputError, match="cannot write"):
        atomic_write_bytes(tmp_path / where, b"x")
