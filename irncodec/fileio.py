"""Output files written the way a careful Unix tool writes them.

* A regular file (new or existing) is written to a temporary file beside it
  and renamed over it only once complete, so a crash, an error or a signal
  never leaves a half-written output; the new file gets the existing file's
  permissions, or the user's umask for a new one (0644 under umask 022).
* A symlink is written through: its target changes, the link stays.
* A special file (a device such as ``/dev/stdout``, a FIFO) or a file with
  other hard links is written in place, once the whole output is ready, so
  the device stays a device and every link sees the new content; write
  errors (``/dev/full``) are reported.
* :func:`check_output` refuses, before any work starts, what must not be
  written: a folder, a name ending in ``/``, a missing folder, a read-only
  file, the input itself, or (unless told to overwrite) an existing file.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import OutputError

#: Temporary names stay short, so a target name of up to 255 bytes still works.
_TMP_PREFIX = ".irncodec-"


def _fail(target: str | os.PathLike, why: str) -> OutputError:
    return OutputError(f"cannot write {os.fspath(target)}: {why}")


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (),
                 overwrite: bool = True) -> None:
    """Raise :class:`OutputError` if ``path`` cannot or must not be written (call before the work).

    With ``overwrite`` False an existing regular file is refused too (a device
    or FIFO such as ``/dev/null`` is still written: that replaces nothing).
    """
    text = os.fspath(path)
    if text.endswith(("/", os.sep)):
        raise _fail(text, "the name ends in '/' (give a file name)")
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise _fail(text, "it is a directory")
    if not target.parent.is_dir():
        raise _fail(text, f"folder {target.parent} does not exist")
    if target.exists():
        for source in inputs:
            with contextlib.suppress(OSError):
                if os.path.samefile(source, target):
                    raise _fail(text, "it is also the input (write to another file)")
        st = target.stat()
        if stat.S_ISREG(st.st_mode) and not overwrite:
            raise _fail(text, "it exists (use -f/--force to overwrite it)")
        if stat.S_ISREG(st.st_mode) and (not st.st_mode & 0o222 or not os.access(target, os.W_OK)):
            raise _fail(text, "it is read-only")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file object whose content becomes ``path`` only if the block completes (see the module doc)."""
    check_output(path)
    target = Path(os.path.realpath(path))
    try:
        st: os.stat_result | None = target.stat()
    except FileNotFoundError:
        st = None
    if st is not None and (not stat.S_ISREG(st.st_mode) or st.st_nlink > 1):
        with _in_place(target, path) as f:
            yield f
        return
    mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _fail(path, exc.strerror or str(exc)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _fail(path, exc.strerror or str(exc)) from None
        raise


@contextlib.contextmanager
def _in_place(target: Path, name: str | os.PathLike) -> Iterator[BinaryIO]:
    """Collect the output in memory, then write it into the existing file or device."""
    buffer = io.BytesIO()
    yield buffer
    try:
        with open(target, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
    except OSError as exc:
        raise _fail(name, exc.strerror or str(exc)) from None


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_output(path) as f:
        f.write(data)


def atomic_write_with(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` (see :func:`atomic_output`) with a callback that writes to a file object."""
    with atomic_output(path) as f:
        write(f)
