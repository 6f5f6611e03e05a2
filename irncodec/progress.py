"""Progress of long work inside the library, for whoever wants to show it.

The library never prints. Loops over many units of work (the tiles of a large
image) call :func:`advance`; a caller that shows progress (the command line's
bar) wraps the work in :func:`reporting`. A context variable carries the
callback, so no signature between the two has to pass it along.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

#: ``callback(stage, done, total)``: ``done`` of ``total`` units of ``stage`` finished.
Callback = Callable[[str, int, int], None]

_callback: ContextVar[Callback | None] = ContextVar("irncodec_progress", default=None)


@contextlib.contextmanager
def reporting(callback: Callback) -> Iterator[None]:
    """Send the progress of the work inside the ``with`` block to ``callback``."""
    token = _callback.set(callback)
    try:
        yield
    finally:
        _callback.reset(token)


def advance(stage: str, done: int, total: int) -> None:
    """Report that ``done`` of ``total`` units of ``stage`` are finished (no-op unless reporting)."""
    callback = _callback.get()
    if callback is not None:
        callback(stage, done, total)
