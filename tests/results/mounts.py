"""Real full and read-only folders for tests: a tiny tmpfs, or a read-only bind mount.

Mounting needs root (or CAP_SYS_ADMIN): where it is refused the test skips saying why, except
under CI (``CI=true``), which must run it. ``chmod`` cannot stand in for a read-only folder:
root writes through permission bits, so only a read-only mount refuses root's writes.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.live import unavailable


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=False, capture_output=True, text=True, timeout=30)


def _mount(*args: str) -> None:
    try:
        done = _run("mount", *args)
    except OSError as exc:  # no mount command at all
        unavailable(f"cannot mount ({' '.join(args)}): {exc}")
    if done.returncode != 0:
        unavailable(f"cannot mount ({' '.join(args)}): {done.stderr.strip()}")


def _umount(target: Path) -> None:
    if _run("umount", str(target)).returncode != 0:
        _run("umount", "-l", str(target))  # busy: detach now, freed when the last file closes


@contextlib.contextmanager
def tiny_disk(target: Path, size: str = "1m") -> Iterator[Path]:
    """``target`` becomes an empty tmpfs of ``size`` bytes (mount's units), for as long as
    the block runs: writes past it fail with ENOSPC, as on a full disk."""
    target.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(target))
    try:
        yield target
    finally:
        _umount(target)


@contextlib.contextmanager
def read_only(target: Path) -> Iterator[ReadOnly]:
    """``target`` (a folder) bound onto itself, read-only until ``writable()`` is called:
    writes fail with EROFS, for root too."""
    target.mkdir(parents=True, exist_ok=True)
    _mount("--bind", str(target), str(target))
    mount = ReadOnly(target)
    try:
        mount.read_only()
        yield mount
    finally:
        _umount(target)


class ReadOnly:
    def __init__(self, target: Path) -> None:
        self.target = target

    def read_only(self) -> None:
        self._remount("ro")
        if os.access(self.target, os.W_OK):  # the remount did not take: the test means nothing
            unavailable(f"the read-only remount of {self.target} did not take")

    def writable(self) -> None:
        self._remount("rw")

    def _remount(self, mode: str) -> None:
        done = _run("mount", "-o", f"remount,{mode},bind", str(self.target))
        if done.returncode != 0:
            unavailable(f"cannot remount {self.target} {mode}: {done.stderr.strip()}")
