"""The entropy stream's step block (docs/format.md), read without torch so that
``irncodec info`` stays quick: where a stream says its quantisation steps were scaled."""

from __future__ import annotations

import math
import struct

#: A step block: a zero where the first tile's ``z_len`` would be (never 0 in a
#: tile), then the step multiplier in thousandths.
STEP_BLOCK = struct.Struct("<IH")
#: Range of the step multiplier a stream may carry, in thousandths: 0.25 to 4.
STEP_MILLI_RANGE = (250, 4000)


class StreamError(ValueError):
    """An entropy-coded payload that is not a well-formed stream for its size."""


def step_milli(step: float) -> int:
    """``step`` in thousandths, checked against ``STEP_MILLI_RANGE`` (ValueError outside it)."""
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step):
        raise ValueError(f"the step multiplier must be a finite number, got {step!r}")
    milli = round(step * 1000)
    low, high = STEP_MILLI_RANGE
    if not low <= milli <= high:
        raise ValueError(f"the step multiplier must be {low / 1000:g} to {high / 1000:g}, got {step:g}")
    return milli


def stream_step(payload: bytes | memoryview) -> float:
    """The step multiplier a stream was coded with: its step block's, or 1 without one.

    Raises StreamError for a step block that is cut short or out of range.
    """
    if len(payload) < 4 or struct.unpack_from("<I", payload)[0] != 0:
        return 1.0
    if len(payload) < STEP_BLOCK.size:
        raise StreamError("the stream ends inside its step block")
    milli = STEP_BLOCK.unpack_from(payload)[1]
    low, high = STEP_MILLI_RANGE
    if not low <= milli <= high or milli == 1000:
        raise StreamError(f"step multiplier {milli / 1000:g} is outside {low / 1000:g} to {high / 1000:g} "
                          "(or 1, which has no step block)")
    return milli / 1000
