"""How many CPU threads the network uses: the ones this process may really run on.

torch starts one thread per core it sees, which oversubscribes a machine where
the process is limited to fewer (CPU affinity, a container's CPU quota) and
slows encoding several times over. The CLI uses :func:`available_cpus` unless
``--threads`` says otherwise; the library changes torch's setting only for the
duration of a call that asks (``threads=``), and puts it back.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup-v2 CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def check_threads(threads: object) -> int | None:
    """``threads`` if it is None or a positive integer; ConfigError otherwise."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or int(threads) < 1:
        raise ConfigError(f"threads must be a positive integer, got {threads!r}")
    return int(threads)


@contextmanager
def limited_threads(threads: int | None) -> Iterator[None]:
    """Run the body with torch using ``threads`` threads (None: leave torch's setting)."""
    threads = check_threads(threads)
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
