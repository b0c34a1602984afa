"""The streaming archive writer: entries -> pax tar -> gzip (ISA-L) -> OpenSSL enc -> output.

``write_archive`` is synchronous and meant for a worker thread: it pulls entries from the sources,
hashes every file as it streams, writes ``metadata.json`` first and ``manifest.json`` last, and hands
encrypted bytes to ``out`` in chunks of about ``CHUNK`` bytes. Memory stays bounded whatever the size
of the data. Any failure raises before the final chunk is produced, so a consumer that only commits on
success never keeps a partial archive.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from isal import isal_zlib

from sddc_backup.archive.entries import ArchiveSource, Entry, EntryType
from sddc_backup.archive.errors import ComponentFailedError
from sddc_backup.archive.manifest import MANIFEST, METADATA, Manifest, ManifestMember
from sddc_backup.archive.openssl_enc import Encryptor

CHUNK = 1 << 18
DEFAULT_LEVEL = 1  # ISA-L level; chosen by bench/archive.py (see docs/design/archive-format.md)
_TAR_BUFFER = 1 << 18


@dataclass
class ArchiveSummary:
    """What was written: the manifest, and the size and SHA-256 of the encrypted output."""

    base: str
    manifest: Manifest
    size: int = 0
    sha256: str = ""


class _EncryptedGzipSink(io.RawIOBase):
    """The file object tarfile writes to: compresses, encrypts, and emits chunks to ``out``."""

    def __init__(self, passphrase: bytes, out: Callable[[bytes], object], level: int, hashed: bool) -> None:
        super().__init__()
        self._gzip = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)
        self._cipher = Encryptor(passphrase)
        self._out = out
        self._pending = bytearray()
        self._digest = hashlib.sha256() if hashed else None
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._emit(self._cipher.update(self._gzip.compress(view)))
        return len(view)

    def finish(self) -> str:
        """Flush every layer; returns the SHA-256 of all the encrypted bytes ('' when not hashed)."""
        self._emit(self._cipher.update(self._gzip.flush()))
        self._emit(self._cipher.finalize())
        if self._pending:
            self._send()
        return "" if self._digest is None else self._digest.hexdigest()

    def _emit(self, data: bytes) -> None:
        if data:
            self._pending += data
            if len(self._pending) >= CHUNK:
                self._send()

    def _send(self) -> None:
        chunk = bytes(self._pending)
        self._pending.clear()
        if self._digest is not None:
            self._digest.update(chunk)
        self.size += len(chunk)
        self._out(chunk)


class _HashingReader(io.RawIOBase):
    """Reads a file entry's content for tarfile while hashing and counting it.

    A failure to read raises ``ComponentFailedError`` here, where it happens: tarfile also writes
    the archive while it reads, and a failure to write the output (a full disk) is not the component's.
    """

    def __init__(self, raw: BinaryIO, what: str) -> None:
        super().__init__()
        self._raw = raw
        self._what = what  # "<source>: <entry name>", for the error
        self.digest = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._read(size)
        self.digest.update(data)
        self.count += len(data)
        return data

    def grew(self) -> bool:
        """Whether there is more to read than was read: the file grew while it was read."""
        return bool(self._read(1))

    def _read(self, size: int) -> bytes:
        try:
            return self._raw.read(size)
        except OSError as exc:
            raise ComponentFailedError(f"{self._what}: reading failed: {exc}") from exc

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@dataclass
class _TarWriter:
    tar: tarfile.TarFile
    base: str
    manifest: Manifest = field(default_factory=Manifest)

    def add(self, source: str, entry: Entry) -> None:
        info = tarfile.TarInfo(f"{self.base}/{entry.name}")
        info.mode, info.mtime = entry.mode, entry.mtime
        if entry.mtime_ns is not None:
            # A float cannot hold today's times to the microsecond; the pax record can, exactly.
            info.mtime = entry.mtime_ns // 1_000_000_000
            info.pax_headers = {**info.pax_headers, "mtime": ns_to_decimal(entry.mtime_ns)}
        info.uid, info.gid, info.uname, info.gname = entry.uid, entry.gid, entry.uname, entry.gname
        if entry.type is EntryType.DIR:
            info.type = tarfile.DIRTYPE
            self._addfile(info)
            self.manifest.members.append(ManifestMember(info.name, EntryType.DIR))
        elif entry.type is EntryType.SYMLINK:
            info.type, info.linkname = tarfile.SYMTYPE, entry.target
            self._addfile(info)
            self.manifest.members.append(ManifestMember(info.name, EntryType.SYMLINK, target=entry.target))
        else:
            self._add_file(source, entry, info)

    def _add_file(self, source: str, entry: Entry, info: tarfile.TarInfo) -> None:
        if entry.open is None:
            raise ComponentFailedError(f"{source}: {entry.name} has no content")
        info.size = entry.size
        try:
            raw = entry.open()
        except OSError as exc:
            raise ComponentFailedError(f"{source}: cannot read {entry.name}: {exc.strerror}") from exc
        reader = _HashingReader(raw, f"{source}: {entry.name}")
        try:
            self._addfile(info, reader)
            grew = reader.grew()
        finally:
            raw.close()
        if reader.count != entry.size or grew:
            raise ComponentFailedError(
                f"{source}: {entry.name} changed size while it was read "
                f"({entry.size} bytes expected, {reader.count + grew}+ read)"
            )
        digest = reader.digest.hexdigest()
        if entry.expected_sha256 is not None and digest != entry.expected_sha256:
            raise ComponentFailedError(f"{source}: {entry.name} changed while it was read")
        self.manifest.members.append(ManifestMember(info.name, EntryType.FILE, entry.size, digest))

    def _addfile(self, info: tarfile.TarInfo, content: BinaryIO | io.RawIOBase | None = None) -> None:
        self.tar.addfile(info, content)
        # tarfile keeps a copy of every member's TarInfo for getmembers(), which a writer never
        # calls: for a large tree that is megabytes, held to the end of the backup.
        self.tar.members.clear()  # type: ignore[attr-defined]  # not in the stubs

    def add_json(self, name: str, document: Mapping[str, Any], mtime: float) -> None:
        """Add an own JSON document, listed in the manifest."""
        data = json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"
        info = self._add_own(name, data, mtime)
        digest = hashlib.sha256(data).hexdigest()
        self.manifest.members.append(ManifestMember(info.name, EntryType.FILE, len(data), digest))

    def add_manifest(self, mtime: float) -> None:
        """Add ``manifest.json``, the last member (it does not list itself)."""
        self._add_own(MANIFEST, self.manifest.encode(), mtime)

    def _add_own(self, name: str, data: bytes, mtime: float) -> tarfile.TarInfo:
        info = tarfile.TarInfo(f"{self.base}/{name}")
        info.size, info.mode, info.mtime = len(data), 0o600, mtime
        self._addfile(info, io.BytesIO(data))
        return info


def ns_to_decimal(ns: int) -> str:
    """Nanoseconds as the decimal seconds of a pax ``mtime`` record: 1700000000.123456789."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    return f"{seconds}.{fraction:09d}".rstrip("0").rstrip(".")


def write_archive(
    base: str,
    metadata: Mapping[str, Any],
    sources: Sequence[ArchiveSource],
    passphrase: bytes,
    out: Callable[[bytes], object],
    *,
    mtime: float,
    level: int = DEFAULT_LEVEL,
    hash_output: bool = True,
) -> ArchiveSummary:
    """Write the archive of ``sources`` to ``out``; see the module docstring for the guarantees.

    ``metadata`` becomes ``metadata.json``; ``mtime`` is the time given to the two JSON members.
    ``hash_output`` off leaves ``ArchiveSummary.sha256`` empty, for a caller whose destination
    hashes the same bytes itself (an upload), so that they are not hashed twice.
    Raises ``ComponentFailedError`` naming the source when a component cannot deliver its data.
    """
    sink = _EncryptedGzipSink(passphrase, out, level, hash_output)
    for source in sources:
        # A source that can prepare in the background (a database measuring its dump) starts now,
        # so that its preparation overlaps with the members written before it.
        start = getattr(source, "start", None)
        if start is not None:
            start()
    try:
        return _write(base, metadata, sources, sink, mtime)
    finally:
        for source in sources:
            close = getattr(source, "close", None)
            if close is not None:
                close()


def _write(
    base: str,
    metadata: Mapping[str, Any],
    sources: Sequence[ArchiveSource],
    sink: _EncryptedGzipSink,
    mtime: float,
) -> ArchiveSummary:
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT, bufsize=_TAR_BUFFER) as tar:
        writer = _TarWriter(tar, base)
        writer.add_json(METADATA, metadata, mtime)
        pending = list(sources)
        while pending:
            _add_source(writer, pending.pop(0), pending)
        writer.add_manifest(mtime)
    digest = sink.finish()
    return ArchiveSummary(base=base, manifest=writer.manifest, size=sink.size, sha256=digest)


def _add_source(writer: _TarWriter, source: ArchiveSource, pending: list[ArchiveSource]) -> None:
    """Write ``source``'s entries. Between two of them, a source still ``pending`` that prepares in
    the background and has become ready (a database whose measuring pass is done) is written at
    once, instead of at its turn: a restore can then load the database while it extracts the rest.
    A source whose turn comes before it is ready is waited for (its ``entries()`` blocks)."""
    entries = source.entries()
    try:
        for entry in entries:
            writer.add(source.name, entry)
            # Looked for again after each one: writing one can let another in, and take it off.
            while (early := next((s for s in pending if _ready(s)), None)) is not None:
                pending[:] = [s for s in pending if s is not early]
                _add_source(writer, early, pending)
    finally:
        # A component releases what backs its entries (a snapshot, a scratch copy, a running
        # pg_dump) when its iterator is closed, also when the archive fails.
        close = getattr(entries, "close", None)
        if close is not None:
            close()


def _ready(source: ArchiveSource) -> bool:
    ready = getattr(source, "ready", None)
    return ready is not None and bool(ready())
