#!/usr/bin/env python
"""Download the Kodak test set (24 PNGs) and verify every file's SHA-256.

    python benchmarks/get_kodak.py ../shared/datasets/kodak

For users who are online and do not have the images; benchmarks then take
``--dataset DIR``. Checksums (``kodak.sha256``) are those of the copy the
published results were measured on, so a changed or damaged file is refused.
Files already present with the right checksum are not downloaded again.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from pathlib import Path

import click

CHECKSUMS = Path(__file__).resolve().parent / "kodak.sha256"
DEFAULT_BASE_URL = "https://r0k.us/graphics/kodak/kodak/"


def expected_checksums(path: Path = CHECKSUMS) -> dict[str, str]:
    """File name -> SHA-256 hex digest, from a ``sha256sum``-style list."""
    sums = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip()] = digest.lower()
    return sums


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(url: str, timeout: float = 60) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def download(folder: Path, base_url: str = DEFAULT_BASE_URL,
             checksums: dict[str, str] | None = None) -> list[str]:
    """Fetch every missing or damaged file into ``folder``; returns the names fetched.

    A download whose checksum does not match is not written, and stops the run.
    """
    checksums = checksums or expected_checksums()
    folder.mkdir(parents=True, exist_ok=True)
    fetched = []
    for name, digest in sorted(checksums.items()):
        target = folder / name
        if target.is_file() and sha256_of(target.read_bytes()) == digest:
            continue
        data = fetch(base_url + name)
        if sha256_of(data) != digest:
            raise ValueError(f"{name}: checksum mismatch (got {sha256_of(data)[:12]}…, "
                             f"expected {digest[:12]}…): not written")
        tmp = target.with_suffix(target.suffix + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        fetched.append(name)
    return fetched


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--base-url", default=DEFAULT_BASE_URL, show_default=True,
              help="Where kodimNN.png files are served (any urllib URL, file:// too).")
def main(folder: Path, base_url: str) -> None:
    """Download Kodak into FOLDER and verify it."""
    try:
        fetched = download(folder, base_url if base_url.endswith("/") else base_url + "/")
    except (OSError, ValueError) as exc:
        sys.exit(f"get_kodak: error: {exc}")
    click.echo(f"{folder}: 24 images verified ({len(fetched)} downloaded)")


if __name__ == "__main__":
    main()
