"""Atomic outputs: complete or absent, never half-written."""

import os
import signal
import stat
import subprocess
import sys
import threading

import pytest

from irncodec.errors import OutputError
from irncodec.fileio import atomic_output, atomic_write_bytes, check_output


def test_write_and_replace(tmp_path):
    path = tmp_path / "out.bin"
    atomic_write_bytes(path, b"one")
    atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two" and list(tmp_path.iterdir()) == [path]


def test_failure_leaves_nothing_and_keeps_old_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(path) as f:
        f.write(b"partial")
        raise RuntimeError("boom")
    assert path.read_bytes() == b"old" and list(tmp_path.iterdir()) == [path]


def test_interrupt_leaves_nothing(tmp_path):
    path = tmp_path / "out.bin"
    with pytest.raises(KeyboardInterrupt), atomic_output(path) as f:
        f.write(b"partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["missing/out.bin", "."])
def test_unwritable_target_is_output_error(tmp_path, where):
    with pytest.raises(OutputError, match="cannot write"):
        atomic_write_bytes(tmp_path / where, b"x")


# --- careful writes: modes, links, special files, refusals ---------------------------


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_the_users_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        atomic_write_bytes(tmp_path / "out.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == mode


def test_replacing_a_file_keeps_its_mode(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    path.chmod(0o640)
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o640


def test_symlinks_are_written_through(tmp_path):
    real = tmp_path / "real.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.bin", "real.bin"]


def test_hard_links_all_see_the_new_content(tmp_path):
    a = tmp_path / "a.bin"
    a.write_bytes(b"old")
    b = tmp_path / "b.bin"
    os.link(a, b)
    atomic_write_bytes(a, b"new")
    assert b.read_bytes() == b"new" and a.stat().st_ino == b.stat().st_ino


def test_a_fifo_is_written_in_place(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    atomic_write_bytes(fifo, b"through the pipe")
    reader.join(timeout=10)
    assert received == [b"through the pipe"] and stat.S_ISFIFO(fifo.stat().st_mode)


def test_in_place_failure_leaves_the_target_alone(tmp_path):
    a = tmp_path / "a.bin"
    a.write_bytes(b"old")
    os.link(a, tmp_path / "b.bin")
    with pytest.raises(RuntimeError), atomic_output(a) as f:
        f.write(b"partial")
        raise RuntimeError("boom")
    assert a.read_bytes() == b"old"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_write_errors_on_devices_are_reported():
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    with pytest.raises(OutputError, match="No space left"):
        atomic_write_bytes("/dev/full", b"x" * 10000)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # still the device


def test_long_names_work(tmp_path):
    path = tmp_path / ("n" * 250 + ".irn")
    atomic_write_bytes(path, b"x")
    assert path.read_bytes() == b"x"


@pytest.mark.parametrize("name, why", [("folder/", "ends in '/'"), ("missing/out.bin", "does not exist"),
                                       (".", "directory")])
def test_check_output_refuses_what_cannot_be_written(tmp_path, name, why):
    (tmp_path / "folder").mkdir()
    with pytest.raises(OutputError, match=why):
        check_output(os.path.join(str(tmp_path), name))


def test_check_output_refuses_the_input_and_read_only_files(tmp_path):
    src = tmp_path / "in.png"
    src.write_bytes(b"data")
    with pytest.raises(OutputError, match="also the input"):
        check_output(src, [src])
    link = tmp_path / "link.png"
    link.symlink_to(src)
    with pytest.raises(OutputError, match="also the input"):
        check_output(link, [src])
    src.chmod(0o444)
    with pytest.raises(OutputError, match="read-only"):
        atomic_write_bytes(src, b"new")
    assert src.read_bytes() == b"data"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_leave_no_temporary_file(tmp_path, sig):
    """The CLI's handlers unwind a signal like Ctrl-C, so the temp file is removed."""
    script = f"""
import os, signal, sys
from irncodec.cli import _Terminated, install_signal_handlers
from irncodec.fileio import atomic_output
install_signal_handlers()
try:
    with atomic_output({str(tmp_path / 'out.irn')!r}) as f:
        f.write(b"partial")
        os.kill(os.getpid(), {int(sig)})
except _Terminated as exc:
    sys.exit(128 + exc.signum)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == 128 + sig, done.stderr.decode()
    assert list(tmp_path.iterdir()) == []
