"""A real full disk for the durability tests (issue 12: "disk full was survived, nothing lost").

`small_disk` mounts a tmpfs of a few MiB, so the store or spool on it meets a genuine ENOSPC
from the kernel rather than a simulated fault; it needs root (the suite runs as root in CI) and
is skipped, with the reason, without it. `Filler` takes the space away and gives it back.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

NOT_ROOT = "mounting a small tmpfs to fill needs root (the suite runs as root in CI)"
CHUNK = 4096


@contextmanager
def small_disk(where: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of `size` mounted on `where` (created), unmounted on exit whatever happened."""
    if os.geteuid() != 0:
        pytest.skip(NOT_ROOT)
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        why = (mounted.stderr.strip().splitlines() or [f"exit {mounted.returncode}"])[0]
        pytest.skip(f"cannot mount a tmpfs on {where}: {why}")
    try:
        yield where
    finally:
        # Lazy, so a process the test failed to stop cannot keep the mount (and the test's
        # temporary folder) busy for ever.
        subprocess.run(["umount", "-l", str(where)], check=False)


class Filler:
    """A file that takes a disk's free space, and gives it back when removed."""

    def __init__(self, disk: Path) -> None:
        self.path = disk / "filler"

    def take(self, nbytes: int | None = None) -> int:
        """Append `nbytes` (or until the disk is full); returns the bytes written."""
        written = 0
        with open(self.path, "ab", buffering=0) as out:
            while nbytes is None or written < nbytes:
                try:
                    written += out.write(b"\0" * CHUNK)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
        return written

    def free(self) -> None:
        self.path.unlink(missing_ok=True)


def free_bytes(disk: Path) -> int:
    stats = os.statvfs(disk)
    return stats.f_bavail * stats.f_frsize
