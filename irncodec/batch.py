"""Which files one command line reads and writes.

``irncodec encode IN OUT`` codes one file; ``irncodec encode IN... -o FOLDER/``
codes each input into ``FOLDER/<stem><suffix>``; ``-`` stands for standard
input or output. :func:`plan` turns the arguments into jobs, or one usage
error, before any work starts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import OutputError

#: The name that means standard input (as an input) or standard output (as the output).
STDIO = "-"


class UsageError(ValueError):
    """The files named on a command line do not make a valid set of jobs."""


@dataclass(frozen=True)
class Job:
    """One file to code: ``input`` and ``output`` are paths, or :data:`STDIO`."""

    input: str
    output: str

    @property
    def input_name(self) -> str:
        return "<stdin>" if self.input == STDIO else self.input

    @property
    def output_name(self) -> str:
        return "<stdout>" if self.output == STDIO else self.output


def is_folder(output: str) -> bool:
    """Whether ``-o`` names a folder: an existing one, or a name ending in '/' (created)."""
    return output.endswith(("/", os.sep)) or os.path.isdir(output)


def plan(paths: Sequence[str], output: str | None, suffix: str) -> list[Job]:
    """The jobs of a command given positional ``paths`` and the ``-o`` value (None if absent).

    Without ``-o`` the paths are exactly INPUT and OUTPUT. With ``-o`` every
    path is an input; ``-o`` is the output file of a single input, or a folder
    that gets one ``<stem><suffix>`` per input.
    """
    if not paths:
        raise UsageError("give an INPUT file")
    if output is None:
        if len(paths) == 2:
            return [Job(paths[0], paths[1])]
        if len(paths) == 1:
            raise UsageError("give an OUTPUT file after INPUT, or -o FILE or FOLDER")
        raise UsageError(f"{len(paths)} inputs: give the folder for their outputs with -o FOLDER/")
    if paths.count(STDIO) > 1:
        raise UsageError("standard input ('-') can be read only once")
    if output == STDIO or not is_folder(output):
        if len(paths) > 1:
            raise UsageError(f"{len(paths)} inputs need -o FOLDER (an existing folder, or a name ending "
                             f"in '/'), not the file '{output}'")
        return [Job(paths[0], output)]
    jobs = []
    for path in paths:
        if path == STDIO:
            raise UsageError("standard input ('-') has no name for its output in a folder: use -o FILE")
        jobs.append(Job(path, os.path.join(output, Path(path).stem + suffix)))
    seen: dict[str, str] = {}
    for job in jobs:
        if job.output in seen:
            raise UsageError(f"'{seen[job.output]}' and '{job.input}' would both be written to '{job.output}'")
        seen[job.output] = job.input
    return jobs


def make_folder(output: str) -> None:
    """Create the ``-o`` folder (and its parents) if it does not exist yet."""
    try:
        os.makedirs(output, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder {output}: {exc.strerror or exc}") from None


def stdout_stream() -> BinaryIO:
    """Standard output for binary data, refused on a terminal (as gzip and cwebp do)."""
    if sys.stdout.isatty():
        raise OutputError("will not write binary data to a terminal: redirect standard output "
                          "(> file or | command)")
    return sys.stdout.buffer


def stdin_stream() -> BinaryIO:
    """Standard input for binary data, refused from a terminal (nothing would arrive)."""
    if sys.stdin.isatty():
        raise OutputError("standard input ('-') is a terminal: pipe or redirect a file into it")
    return sys.stdin.buffer
