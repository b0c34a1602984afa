"""The operators' documented recovery pipeline, run exactly as they type it."""

from __future__ import annotations

import subprocess
from pathlib import Path

DECRYPT = "openssl enc -d -aes-256-cbc -md sha256 -pass file:{passfile} -in {archive}"


def openssl_tar(archive: Path, passfile: Path, tar_args: str = "-tz") -> subprocess.CompletedProcess[str]:
    """``openssl enc -d … -pass file:F -in FILE | tar <tar_args>``; the caller checks the result."""
    return subprocess.run(
        f"{DECRYPT.format(passfile=passfile, archive=archive)} | tar {tar_args}",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
    )


def openssl_listing(archive: Path, passfile: Path) -> list[str]:
    """The member names, as ``tar -tz`` prints them after decryption; fails if either tool does."""
    result = openssl_tar(archive, passfile)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()
