"""The FrEIA classes irncodec builds on, imported without SciPy's statistics package.

``import FrEIA`` imports every FrEIA module, and one of them (``AllInOneBlock``,
which irncodec does not use) imports ``scipy.stats`` for one function: about
half a second of every command's start on a 2-core CPU, more than FrEIA itself.
While FrEIA is imported, ``scipy.stats`` is a stand-in whose one function loads
the real package when first called; the stand-in is removed right after, so any
later ``import scipy.stats`` gets the real package.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class _Deferred:
    """scipy.stats.special_ortho_group, imported when AllInOneBlock first uses it (``.rvs``)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module("scipy.stats").special_ortho_group, name)


def _import_freia() -> None:
    if "scipy.stats" in sys.modules:  # already paid for: FrEIA gets the real package
        return
    stand_in = types.ModuleType("scipy.stats")  # pragma: no mutate  (its name is never read)
    stand_in.special_ortho_group = _Deferred()  # type: ignore[attr-defined]
    sys.modules["scipy.stats"] = stand_in
    try:
        importlib.import_module("FrEIA.modules")
    finally:
        if sys.modules.get("scipy.stats") is stand_in:
            del sys.modules["scipy.stats"]


_import_freia()

from FrEIA.framework import SequenceINN  # noqa: E402
from FrEIA.modules import HaarDownsampling, InvertibleModule  # noqa: E402

__all__ = ["HaarDownsampling", "InvertibleModule", "SequenceINN"]
