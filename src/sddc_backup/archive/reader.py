"""The streaming archive reader: input -> OpenSSL enc -> gzip -> tar -> a ``MemberSink``.

``read_archive`` is synchronous and meant for a worker thread. It checks every layer as it goes and
every member against the safety rules before the sink sees it, hashes every file, and at the end
checks the manifest. It returns only when the whole archive is intact; until then a sink must treat
what it received as unverified (the extractor writes to a scratch directory for that reason).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, cast

from isal import isal_zlib

from sddc_backup.archive.entries import EntryType
from sddc_backup.archive.errors import (
    CorruptArchiveError,
    ManifestMismatchError,
    UnsafeMemberError,
    WrongPassphraseError,
)
from sddc_backup.archive.manifest import MANIFEST, METADATA, Manifest, ManifestMember
from sddc_backup.archive.openssl_enc import Decryptor

GZIP_MAGIC = b"\x1f\x8b\x08"
# The stub types isal_zlib.error as an instance; at run time it is the exception class.
_GZIP_ERROR = cast(type[Exception], isal_zlib.error)
READ_SIZE = 1 << 18  # 256 KiB: larger pieces cost more in allocation than they save
PULL_SIZE = 1 << 18
MAX_NAME = 4096
MAX_MEMBERS = 1_000_000
MAX_DEPTH = 128
MAX_METADATA = 1 << 20  # metadata.json and manifest.json are read whole, so they are bounded
MAX_MANIFEST = 256 << 20
DEFAULT_MAX_MEMBER_SIZE = 1 << 40


@dataclass(frozen=True)
class MemberInfo:
    """A member as a sink sees it: ``name`` is relative to the archive's top-level folder."""

    name: str
    type: EntryType
    mode: int
    mtime_ns: int
    uid: int
    gid: int
    size: int = 0
    target: str = ""


class MemberSink(Protocol):
    def directory(self, member: MemberInfo) -> None: ...
    def symlink(self, member: MemberInfo) -> None: ...
    def begin_file(self, member: MemberInfo) -> None: ...
    def write(self, data: bytes) -> None: ...
    def end_file(self) -> None: ...


class DiscardingSink:
    """For verification only: members are checked and hashed, and nothing is kept."""

    def directory(self, member: MemberInfo) -> None:
        pass

    def symlink(self, member: MemberInfo) -> None:
        pass

    def begin_file(self, member: MemberInfo) -> None:
        pass

    def write(self, data: bytes) -> None:
        pass

    def end_file(self) -> None:
        pass


@dataclass
class ArchiveReport:
    base: str = ""
    metadata: dict[str, Any] | None = None
    manifest: Manifest | None = None
    members: list[ManifestMember] = field(default_factory=list)

    @property
    def legacy(self) -> bool:
        """A plain ``tar -cz | openssl enc`` archive: checked as far as its structure allows."""
        return self.manifest is None


class _PlainStream(io.RawIOBase):
    """The decrypted, decompressed tar stream, pulled from encrypted chunks."""

    def __init__(
        self, chunks: Iterable[bytes], passphrase: bytes, on_plain: Callable[[bytes], object] | None
    ) -> None:
        super().__init__()
        self._on_plain = on_plain
        self._chunks: Iterator[bytes] = iter(chunks)
        self._cipher = Decryptor(passphrase)
        self._gzip = isal_zlib.decompressobj(31)
        self._head = b""
        self._magic_ok = False
        self._buffer = bytearray()
        self._pending = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._buffer and not self._done:
            self._pull()
        n = min(len(buffer), len(self._buffer))
        buffer[:n] = self._buffer[:n]
        del self._buffer[:n]
        return n

    def _pull(self) -> None:
        # Large input chunks (a download yields several MiB at once) are taken a slice at a time, so
        # that what one step decrypts and inflates, and so the memory it holds, stays small.
        if not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._done = True
                self._inflate(self._cipher.finalize(), final=True)
                return
            self._pending = memoryview(chunk)
        piece, self._pending = self._pending[:PULL_SIZE], self._pending[PULL_SIZE:]
        self._inflate(self._cipher.update(bytes(piece)), final=False)

    def _inflate(self, data: bytes, *, final: bool) -> None:
        if not self._magic_ok:
            self._head += data
            if len(self._head) < len(GZIP_MAGIC) and not final:
                return
            if not self._head.startswith(GZIP_MAGIC):
                raise WrongPassphraseError(
                    "The passphrase does not open this archive (or the file is not a backup)."
                )
            self._magic_ok, data, self._head = True, self._head, b""
        if self._on_plain is not None and data:
            self._on_plain(data)
        try:
            if self._gzip.eof and data:
                raise CorruptArchiveError("There is data after the end of the compressed stream.")
            self._buffer += self._gzip.decompress(data)
            if self._gzip.unused_data:
                raise CorruptArchiveError("There is data after the end of the compressed stream.")
            if final and not self._gzip.eof:
                raise CorruptArchiveError("The compressed stream ends early: the file is truncated.")
        except _GZIP_ERROR as exc:
            raise CorruptArchiveError(f"The compressed stream is damaged: {exc}") from exc


def _mtime_ns(member: tarfile.TarInfo) -> int:
    """The exact time from the pax record when there is one (tarfile's float loses precision)."""
    exact = member.pax_headers.get("mtime")
    try:
        return int(Decimal(exact) * 1_000_000_000) if exact else int(member.mtime) * 1_000_000_000
    except ArithmeticError:
        return int(member.mtime * 1_000_000_000)


def _info(member: tarfile.TarInfo, base: str) -> MemberInfo:
    kind = EntryType.DIR if member.isdir() else EntryType.SYMLINK if member.issym() else EntryType.FILE
    relative = member.name.removeprefix(base).lstrip("/")
    return MemberInfo(
        name=relative,
        type=kind,
        mode=member.mode & 0o7777,
        mtime_ns=_mtime_ns(member),
        uid=member.uid,
        gid=member.gid,
        size=member.size if kind is EntryType.FILE else 0,
        target=member.linkname if kind is EntryType.SYMLINK else "",
    )


@dataclass
class _Rules:
    max_member_size: int
    base: str = ""
    seen: set[str] = field(default_factory=set)

    def check(self, member: tarfile.TarInfo, count: int) -> None:
        name = member.name
        if count > MAX_MEMBERS:
            raise UnsafeMemberError(f"The archive has more than {MAX_MEMBERS} members.")
        if len(name.encode(errors="surrogateescape")) > MAX_NAME or "\x00" in name:
            raise UnsafeMemberError(f"A member name is too long or holds a NUL byte: {name[:80]!r}…")
        parts = name.rstrip("/").split("/")
        if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise UnsafeMemberError(f"{name!r} is an absolute path or climbs out of the archive's folder.")
        if not self.base:
            self.base = parts[0]
        if parts[0] != self.base:
            raise UnsafeMemberError(f"{name!r} is outside the archive's folder {self.base!r}.")
        if len(parts) > MAX_DEPTH:
            raise UnsafeMemberError(f"{name[:80]!r}… is nested more than {MAX_DEPTH} folders deep.")
        if len(parts) == 1 and not member.isdir():
            raise UnsafeMemberError(f"{name!r} stands in place of the archive's folder.")
        key = "/".join(parts)
        if key in self.seen:
            raise UnsafeMemberError(f"{name!r} appears twice in the archive.")
        self.seen.add(key)
        if not (member.isreg() or member.isdir() or member.issym()):
            raise UnsafeMemberError(f"{name!r} is a hard link, device, FIFO or other special member.")
        if member.size > self.max_member_size:
            raise UnsafeMemberError(f"{name!r} is larger than the limit of {self.max_member_size} bytes.")
        if member.issym():
            _check_link(name, member.linkname, len(parts))


def _check_link(name: str, target: str, depth: int) -> None:
    """A relative link may not climb above the archive's folder. Absolute targets are checked by the
    extractor, which knows the protected paths."""
    if not target or "\x00" in target:
        raise UnsafeMemberError(f"{name!r} is a link with an empty or NUL target.")
    if target.startswith("/"):
        return
    level = depth - 1  # the folder the link is in, counted from the archive's folder
    for part in target.split("/"):
        level += -1 if part == ".." else 0 if part in ("", ".") else 1
        if level < 1:
            raise UnsafeMemberError(f"{name!r} links to {target!r}, outside the archive's folder.")


def read_archive(
    chunks: Iterable[bytes],
    passphrase: bytes,
    sink: MemberSink,
    *,
    max_member_size: int = DEFAULT_MAX_MEMBER_SIZE,
    on_plain: Callable[[bytes], object] | None = None,
) -> ArchiveReport:
    """Read and check the whole archive, handing each member to ``sink``; see the module docstring.

    Raises ``WrongPassphraseError``, ``CorruptArchiveError``, ``UnsafeMemberError`` or
    ``ManifestMismatchError`` naming what failed. ``on_plain`` receives the decrypted, still
    compressed bytes (for ``archive decrypt``), which are unverified until this function returns.
    """
    stream = _PlainStream(chunks, passphrase, on_plain)
    report, rules = ArchiveReport(), _Rules(max_member_size)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for count, member in enumerate(tar, start=1):
                if report.manifest is not None:
                    raise ManifestMismatchError(f"{member.name} comes after manifest.json.")
                rules.check(member, count)
                report.base = rules.base
                _read_member(tar, member, report, sink)
        # tarfile stops at the end-of-archive blocks; the layers below must end exactly there too.
        while stream.readinto(bytearray(READ_SIZE)):
            pass
    except tarfile.TarError as exc:
        raise CorruptArchiveError(f"The tar structure is damaged: {exc}") from exc
    if report.manifest is not None:
        report.manifest.check(report.members)
    elif report.metadata is not None and report.metadata.get("product") == "sddc-backup":
        raise ManifestMismatchError("The archive's manifest.json is missing: the archive is incomplete.")
    return report


def _read_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, report: ArchiveReport, sink: MemberSink
) -> None:
    info = _info(member, report.base)
    if info.type is EntryType.DIR:
        sink.directory(info)
        if info.name:
            report.members.append(ManifestMember(member.name.rstrip("/"), EntryType.DIR))
        return
    if info.type is EntryType.SYMLINK:
        sink.symlink(info)
        report.members.append(ManifestMember(member.name, EntryType.SYMLINK, target=info.target))
        return
    content = tar.extractfile(member)
    assert content is not None  # a regular file always has content
    digest, kept = hashlib.sha256(), bytearray()
    own = info.name in (MANIFEST, METADATA)
    limit = MAX_METADATA if info.name == METADATA else MAX_MANIFEST
    if own and info.size > limit:
        raise UnsafeMemberError(f"{info.name} is larger than {limit} bytes.")
    if not own:
        sink.begin_file(info)
    while data := content.read(READ_SIZE):
        digest.update(data)
        if own:
            kept += data
        else:
            sink.write(data)
    if own:
        _own_document(info.name, bytes(kept), report)
    else:
        sink.end_file()
    if info.name != MANIFEST:
        report.members.append(ManifestMember(member.name, EntryType.FILE, info.size, digest.hexdigest()))


def _own_document(name: str, data: bytes, report: ArchiveReport) -> None:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise CorruptArchiveError(f"{name} is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(document, dict):
        raise CorruptArchiveError(f"{name} is not a JSON object.")
    if name == METADATA:
        report.metadata = document
    else:
        report.manifest = Manifest.from_json(document)
