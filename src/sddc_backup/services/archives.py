"""Archive use cases that need no server: create, verify, inspect, decrypt and encrypt backup files.

Every file this module writes appears under its final name only once it is complete and checked: it is
written as ``<name>.part`` and renamed, and the ``.part`` file is removed on any failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from sddc_backup import __version__
from sddc_backup.archive.entries import ArchiveSource
from sddc_backup.archive.errors import ArchiveError, CorruptArchiveError
from sddc_backup.archive.manifest import archive_name, base_name, sidecar_text
from sddc_backup.archive.openssl_enc import Encryptor
from sddc_backup.archive.reader import ArchiveReport, DiscardingSink, MemberSink, read_archive
from sddc_backup.archive.writer import ArchiveSummary, write_archive
from sddc_backup.domain.clock import Clock
from sddc_backup.domain.errors import SddcBackupError
from sddc_backup.services.components.directory import DirectoryComponent

READ_SIZE = 1 << 20


@dataclass(frozen=True)
class CreatedArchive:
    path: Path
    summary: ArchiveSummary


def file_chunks(path: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(READ_SIZE):
                yield chunk
    except FileNotFoundError as exc:
        raise _not_found(path) from exc
    except OSError as exc:
        raise ArchiveError(
            f"{path} cannot be read: {exc.strerror or exc}.",
            error_code="ARCHIVE_NOT_READABLE",
            remediation="Give the path of a backup file that this user may read.",
        ) from exc


def _not_found(path: Path) -> ArchiveError:
    return ArchiveError(
        f"{path} does not exist.", error_code="ARCHIVE_NOT_FOUND", remediation="Check the path of the file."
    )


class ArchiveWriteError(SddcBackupError):
    error_code = "BACKUP_WRITE_FAILED"
    http_status = 500
    remediation = "Check the free space and the permissions of the target directory, then try again."


@contextlib.contextmanager
def _publish(final: Path) -> Iterator[BinaryIO]:
    """Write to ``final.part``; rename it to ``final`` on success, remove it on failure.

    A failure to write (a full disk, a lost mount) raises ``ArchiveWriteError`` naming the file.
    """
    # A name of its own, so that two runs writing the same file cannot remove each other's work.
    part = final.with_name(f"{final.name}.{secrets.token_hex(4)}.part")
    try:
        # Owner-only, like the data it holds; O_EXCL so that a stale .part is never appended to.
        with os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        part.rename(final)
    except OSError as exc:
        raise ArchiveWriteError(f"{final} cannot be written: {exc.strerror or exc}.") from exc
    finally:
        part.unlink(missing_ok=True)


def write_sidecar(archive: Path, sha256: str) -> Path:
    sidecar = archive.with_name(archive.name + ".sha256")
    with _publish(sidecar) as handle:
        handle.write(sidecar_text(archive.name, sha256).encode())
    return sidecar


def verify(path: Path, passphrase: bytes, sink: MemberSink | None = None) -> ArchiveReport:
    """Decrypt and check the whole archive; raises an ``ArchiveError`` naming what is wrong."""
    return read_archive(file_chunks(path), passphrase, sink or DiscardingSink())


def decrypt(path: Path, passphrase: bytes, out: Path) -> ArchiveReport:
    """Write the decrypted ``.tar.gz`` to ``out``, which appears only if the whole archive checks out."""
    with _publish(out) as handle:
        report = read_archive(file_chunks(path), passphrase, DiscardingSink(), on_plain=handle.write)
    return report


def encrypt(source: Path, passphrase: bytes, out: Path, *, mtime: float) -> str:
    """Encrypt a ``.tar.gz`` as it is, or archive an extracted backup folder again with a new manifest
    (for an operator who had to patch a file in it). Returns the SHA-256 of the encrypted file."""
    if not source.exists():
        raise _not_found(source)
    with _publish(out) as handle:
        digest = hashlib.sha256()

        def emit(chunk: bytes) -> None:
            digest.update(chunk)
            handle.write(chunk)

        if source.is_dir():
            metadata = DirectoryComponent.metadata_of(source)
            write_archive(source.name, metadata, [DirectoryComponent(source)], passphrase, emit, mtime=mtime)
        else:
            _encrypt_file(source, passphrase, emit)
    write_sidecar(out, digest.hexdigest())
    return digest.hexdigest()


def _encrypt_file(source: Path, passphrase: bytes, emit: Callable[[bytes], None]) -> None:
    with source.open("rb") as handle:
        if handle.read(2) != b"\x1f\x8b":
            raise CorruptArchiveError(f"{source} is not a gzip file (.tar.gz) or a folder.")
        handle.seek(0)
        cipher = Encryptor(passphrase)
        while chunk := handle.read(READ_SIZE):
            emit(cipher.update(chunk))
        emit(cipher.finalize())


def metadata_for(
    fqdn: str, created: datetime, components: Sequence[ArchiveSource], protected: Sequence[Path]
) -> dict[str, Any]:
    hostname, _, domain = fqdn.partition(".")
    return {
        "formatVersion": 1,
        "product": "sddc-backup",
        "productVersion": __version__,
        "fqdn": fqdn,
        "hostname": hostname,
        "domain": domain,
        "createdAt": created.isoformat(),
        "createdOn": socket.gethostname(),
        "components": [{"name": c.name, "type": type(c).__name__} for c in components],
        "protectedPaths": [str(p) for p in protected],
    }


def create(
    out_dir: Path,
    fqdn: str,
    clock: Clock,
    components: Sequence[ArchiveSource],
    protected: Sequence[Path],
    passphrase: bytes,
    *,
    level: int,
) -> CreatedArchive:
    """A full backup into ``out_dir``: the archive and its ``.sha256`` sidecar."""
    created = clock.now()
    name = archive_name(fqdn, created)
    target = out_dir / name
    if not out_dir.is_dir():
        raise ArchiveError(
            f"{out_dir} is not a directory.",
            error_code="BACKUP_DIRECTORY_NOT_FOUND",
            remediation=f"Create {out_dir}, or give an existing directory with -o.",
        )
    metadata = metadata_for(fqdn, created, components, protected)
    with _publish(target) as handle:
        summary = write_archive(
            base_name(name),
            metadata,
            components,
            passphrase,
            handle.write,
            mtime=created.timestamp(),
            level=level,
        )
    write_sidecar(target, summary.sha256)
    return CreatedArchive(target, summary)
