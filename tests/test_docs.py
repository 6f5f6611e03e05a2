"""The README and docs show commands that work: every `irncodec` line parses, every link resolves."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from irncodec.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _shell_commands(page: Path) -> list[str]:
    """The `irncodec ...` commands of a page's sh blocks (each stage of a pipe on its own)."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", page.read_text(), flags=re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].split(" >")[0].strip()
            commands.extend(part.strip() for part in line.split("|") if part.strip().startswith("irncodec "))
    return commands


COMMANDS = [(page.name, command) for page in PAGES for command in _shell_commands(page)]


def test_the_readme_shows_commands_and_fits_on_a_few_screens():
    assert len([c for page, c in COMMANDS if page == "README.md"]) >= 6
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


@pytest.mark.parametrize("page, command", COMMANDS)
def test_documented_command_parses(page, command):
    """Options exist, take the values shown and the files are in a valid arrangement (nothing runs)."""
    name, *args = shlex.split(command)[1:]
    sub = main.get_command(click.Context(main), name)
    assert sub is not None, f"{page}: unknown command '{name}'"
    try:
        sub.make_context(name, args)
    except click.UsageError as exc:
        if isinstance(exc, click.BadParameter) and "does not exist" in exc.format_message():
            return  # an example file (a checkpoint of the user's own run): the arrangement parsed
        pytest.fail(f"{page}: `{command}`: {exc.format_message()}")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" not in target:
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
