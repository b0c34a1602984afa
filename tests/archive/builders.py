"""Inputs for the tests that attack the archive reader and extractor: valid archives from our writer,
hostile tars built member by member, and the real ``openssl`` binary for re-encryption."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sddc_backup.archive.entries import Entry, EntryType
from sddc_backup.archive.openssl_enc import Encryptor
from sddc_backup.archive.reader import ArchiveReport, MemberSink, read_archive
from sddc_backup.archive.writer import write_archive

PASS = b"VMw@re1!VMw@re1!"
BASE = "vcf-backup-sfo-vcf01-sfo-rainpole-io-2026-11-27-08-00-00"
METADATA = {"formatVersion": 1, "product": "sddc-backup", "fqdn": "sfo-vcf01.sfo.rainpole.io"}
OPENSSL = "/usr/bin/openssl"
CIPHER_ARGS = ["-aes-256-cbc", "-md", "sha256"]


@dataclass
class MemorySource:
    """An ``ArchiveSource`` over entries held in memory."""

    name: str
    items: Sequence[Entry]

    def entries(self) -> Iterator[Entry]:
        yield from self.items


def file_entry(name: str, data: bytes, mode: int = 0o644) -> Entry:
    return Entry(name, EntryType.FILE, mode=mode, size=len(data), open=lambda: io.BytesIO(data))


def sample_entries() -> list[Entry]:
    """A small tree: a directory, three files of different sizes and a relative link."""
    return [
        Entry("files/etc/app", EntryType.DIR, mode=0o755),
        file_entry("files/etc/app/v1.conf", b"listen 443\n" * 40),
        file_entry("files/etc/app/v2.conf", bytes(range(256)) * 12),
        file_entry("database/sddc-postgres.bkp", b"-- dump\nCOPY t FROM stdin;\n" * 100),
        Entry("files/etc/app/current", EntryType.SYMLINK, target="v2.conf"),
    ]


def our_archive(entries: Sequence[Entry] | None = None, passphrase: bytes = PASS) -> bytes:
    """A whole archive as our writer makes it."""
    chunks: list[bytes] = []
    items = sample_entries() if entries is None else entries
    write_archive(BASE, METADATA, [MemorySource("test", items)], passphrase, chunks.append, mtime=0)
    return b"".join(chunks)


def encrypt(plain: bytes, passphrase: bytes = PASS) -> bytes:
    cipher = Encryptor(passphrase)
    return cipher.update(plain) + cipher.finalize()


def openssl(*args: str, stdin: bytes) -> bytes:
    """The real openssl binary; fails the test if it fails."""
    result = subprocess.run([OPENSSL, *args], input=stdin, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def openssl_encrypt(plain: bytes, passphrase: bytes = PASS) -> bytes:
    return openssl("enc", *CIPHER_ARGS, "-pass", f"pass:{passphrase.decode()}", stdin=plain)


def openssl_decrypt(blob: bytes, passphrase: bytes = PASS) -> bytes:
    return openssl("enc", "-d", *CIPHER_ARGS, "-pass", f"pass:{passphrase.decode()}", stdin=blob)


Member = tuple[tarfile.TarInfo, bytes | None]


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", link: str = "") -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o644
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        return info, data
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info, None


def tar_of(members: Sequence[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, None if data is None else io.BytesIO(data))
    return buffer.getvalue()


def hostile(members: Sequence[Member], passphrase: bytes = PASS) -> bytes:
    """tar -> gzip -> our encryptor, with whatever members the test wants."""
    return encrypt(gzip.compress(tar_of(members), mtime=0), passphrase)


def members_of(blob: bytes) -> list[Member]:
    """The members of an archive, decrypted by the real openssl and unpacked by tarfile."""
    tar_bytes = gzip.decompress(openssl_decrypt(blob))
    found: list[Member] = []
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        for info in tar:
            content = tar.extractfile(info) if info.isreg() else None
            found.append((info, None if content is None else content.read()))
    return found


def reassemble(members: Sequence[Member]) -> bytes:
    """Members back into an archive: pax tar, gzip, and the real openssl."""
    return openssl_encrypt(gzip.compress(tar_of(members), mtime=0))


def read(blob: bytes, sink: MemberSink, *, chunk: int = 1 << 20, **kwargs: int) -> ArchiveReport:
    chunks = [blob[i : i + chunk] for i in range(0, len(blob), chunk)]
    return read_archive(chunks, PASS, sink, **kwargs)


def flip(blob: bytes, bit: int) -> bytes:
    damaged = bytearray(blob)
    damaged[bit // 8] ^= 1 << (bit % 8)
    return bytes(damaged)


def listing(top: Path, *, excluding: Path | None = None) -> set[str]:
    """Every path under ``top`` (links not followed), except ``excluding`` and what is under it."""
    found: set[str] = set()
    for directory, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(directory, name)
            if excluding is None or not path.is_relative_to(excluding):
                found.add(path.relative_to(top).as_posix())
    return found
