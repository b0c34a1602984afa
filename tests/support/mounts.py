"""Small real filesystems for failure tests: full disks and read-only mounts (the tests run as root)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def tmpfs(path: Path, size: str = "256k", *, read_only: bool = False) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` at ``path`` (created) for the duration of the block."""
    assert os.geteuid() == 0, "mounting a test filesystem needs root (CI runs as root)"
    path.mkdir(exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)
