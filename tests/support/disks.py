"""Small real filesystems for tests: a tmpfs of a given size, filled to the last byte, remounted read-only.

Mounting needs root (CI runs as root); elsewhere `tmpfs()` skips with the reason, which CI would report
as a failure (tests/support/ci_policy.py), so these checks cannot go missing there.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["fill", "free", "read_only", "tmpfs"]


@contextlib.contextmanager
def tmpfs(where: Path, size: str = "40m") -> Iterator[Path]:
    """A fresh tmpfs of `size` mounted at `where` for the block; unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root: mount -t tmpfs -o size=40m)")
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(where)], capture_output=True)
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(where: Path) -> Path:
    """Write a file in `where` until its filesystem has no byte left; the file's path."""
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        chunk = b"\0" * (1 << 20)
        while chunk:
            try:
                os.write(fd, chunk)
            except OSError:
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)
    stat = os.statvfs(where)
    assert stat.f_bavail == 0, f"{where} still has {stat.f_bavail * stat.f_frsize} bytes free"
    return filler


def free(filler: Path, nbytes: int | None = None) -> None:
    """Give back `nbytes` of the filler's space (None: all of it, the filler removed)."""
    if nbytes is None:
        filler.unlink()
        return
    os.truncate(filler, max(filler.stat().st_size - nbytes, 0))


@contextlib.contextmanager
def read_only(where: Path) -> Iterator[None]:
    """The tmpfs at `where` remounted read-only for the block."""
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(where)], check=True, capture_output=True)
