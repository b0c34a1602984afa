"""The PostgreSQL database of ``SDDC_BACKUP_POSTGRES_DSN``, as one plain-SQL ``pg_dump`` member.

tar needs a member's size before its data, and the dump is never staged. So one exported snapshot is
dumped twice: pass 1 counts and hashes the output (``size``, ``expected_sha256``), pass 2 streams it
into the archive. Both passes read the same snapshot, so the outputs are the same byte for byte (with
the same ``\\restrict`` key, and sequence values pinned to pass 1's: see ``_pg_stream``); the writer
checks pass 2 against the digest of pass 1.

The snapshot is exported by a session of our own (``REPEATABLE READ, READ ONLY``, with
``idle_in_transaction_session_timeout`` off) that stays open until pass 2 has produced its first byte
(``pg_dump`` imports the snapshot before it writes anything), or until ``entries()`` moves on or is
closed. That session is a ``psql`` fed on a pipe, not a driver in this process: the upload process
that runs this component then loads no database driver (ADR 0022). Passwords never reach a command
line or a message: the programs get them in ``PGPASSWORD``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from sddc_backup.archive.entries import Entry, EntryType
from sddc_backup.archive.errors import ComponentFailedError
from sddc_backup.services.components._common import component_failed, group_name, user_name
from sddc_backup.services.components._pg import PgProcess, PgTarget, dump_options, find_tool
from sddc_backup.services.components._pg_stream import DumpStream, SequencePins

__all__ = ["MEMBER", "PostgresComponent"]

MEMBER = "database/sddc-postgres.bkp"
CHUNK = 1 << 20


@dataclass(frozen=True)
class _Measured:
    pg_dump: Path
    extra: tuple[str, ...]
    snapshot: _Snapshot
    size: int
    digest: str
    sequences: list[bytes]


class PostgresComponent:
    """A consistent plain-SQL dump of one database, streamed in two passes over one snapshot."""

    def __init__(self, dsn: str, bindir: Path | None = None, name: str = "postgres") -> None:
        self._name = name
        self._target = PgTarget.parse(dsn, name)
        self._bindir = bindir
        self._pool: ThreadPoolExecutor | None = None
        self._pass_1: Future[_Measured] | None = None
        self._measuring: PgProcess | None = None

    @property
    def name(self) -> str:
        return self._name

    def start(self) -> None:
        """Begin pass 1 in the background, so that it overlaps with the members written before this
        one. ``entries()`` waits for it; ``close()`` ends it if the archive stops first."""
        if self._pass_1 is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="pg_dump-pass-1")
            self._pass_1 = self._pool.submit(self._prepare)

    def ready(self) -> bool:
        """Whether pass 1 has ended (or failed): the archive can take the dump now without waiting."""
        return self._pass_1 is not None and self._pass_1.done()

    def close(self) -> None:
        """Release the snapshot and the worker, whatever state the dump is in."""
        if self._pass_1 is not None:
            measuring = self._measuring
            if not self._pass_1.done() and measuring is not None:
                measuring.kill()  # the archive stopped first: pass 1 is no longer wanted
            with contextlib.suppress(Exception):
                self._pass_1.result().snapshot.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _prepare(self) -> _Measured:
        pg_dump = find_tool("pg_dump", self._bindir, self._name)
        extra = dump_options(pg_dump)
        psql = find_tool("psql", self._bindir, self._name)
        snapshot = _Snapshot(psql, self._target, self._failed)
        try:
            size, digest, sequences = self._measure(pg_dump, snapshot.id, extra)
        except BaseException:
            snapshot.close()
            raise
        return _Measured(pg_dump, tuple(extra), snapshot, size, digest, sequences)

    def entries(self) -> Iterator[Entry]:
        self.start()
        assert self._pass_1 is not None
        measured = self._pass_1.result()
        pg_dump, extra, snapshot = measured.pg_dump, measured.extra, measured.snapshot
        size, digest, sequences = measured.size, measured.digest, measured.sequences
        streams: list[DumpStream] = []
        try:

            def open_pass_2() -> BinaryIO:
                if snapshot.closed:
                    raise self._failed("open() was called after entries() had moved past the dump")
                process = self._run(pg_dump, snapshot.id, extra)
                stream = DumpStream(process, SequencePins(sequences), size, snapshot.close, self._failed)
                streams.append(stream)
                return cast(BinaryIO, stream)

            uid, gid = os.getuid(), os.getgid()
            yield Entry(
                name=MEMBER,
                type=EntryType.FILE,
                mode=0o600,
                mtime=snapshot.taken_at_ns / 1e9,
                mtime_ns=snapshot.taken_at_ns,
                uid=uid,
                gid=gid,
                uname=user_name(uid),
                gname=group_name(gid),
                size=size,
                open=open_pass_2,
                expected_sha256=digest,
            )
        finally:
            for stream in streams:
                stream.abandon()
            snapshot.close()

    def _measure(self, pg_dump: Path, snapshot_id: str, extra: Sequence[str]) -> tuple[int, str, list[bytes]]:
        """Pass 1: the size and SHA-256 of the dump (read in 1 MiB blocks and thrown away), and its
        sequence values."""
        process = self._measuring = self._run(pg_dump, snapshot_id, extra)
        pins = SequencePins()
        digest = hashlib.sha256()
        size = 0
        try:
            while chunk := process.stdout.read(CHUNK):
                pins.feed(chunk)  # records; the output is the input
                digest.update(chunk)
                size += len(chunk)
            returncode = process.finish()
            if returncode != 0:
                raise self._failed(f"pg_dump (pass 1, measuring) {process.failure(returncode)}")
        finally:
            process.kill()  # nothing to do when it has exited
            process.close()
        return size, digest.hexdigest(), pins.lines

    def _run(self, pg_dump: Path, snapshot_id: str, extra: Sequence[str]) -> PgProcess:
        args = [
            str(pg_dump),
            f"--snapshot={snapshot_id}",
            "--format=plain",
            "--no-password",
            f"--dbname={self._target.conninfo}",
            *extra,
        ]
        try:
            return PgProcess(args, self._target.env())
        except OSError as exc:
            raise self._failed(f"cannot run {pg_dump}: {exc.strerror or exc}") from exc

    def _failed(self, detail: str) -> ComponentFailedError:
        subject = f"the PostgreSQL database {self._target.display}"
        return component_failed(self._name, subject, self._target.scrub(detail))


_EXPORT = (
    b"SET idle_in_transaction_session_timeout = 0;\n"
    b"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\n"
    b"SELECT pg_export_snapshot();\n"
)


class _Snapshot:
    """An exported snapshot, held by a ``psql`` in an open ``REPEATABLE READ, READ ONLY`` transaction
    until ``close()`` ends its input (psql then exits, and the transaction ends with the session)."""

    def __init__(self, psql: Path, target: PgTarget, failed: Callable[[str], ComponentFailedError]) -> None:
        args = [str(psql), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "--no-password"]
        args.append(f"--dbname={target.conninfo}")
        try:
            self._process: PgProcess | None = PgProcess(args, target.env(), fed=True, answers=True)
        except OSError as exc:
            raise failed(f"cannot run {psql}: {exc.strerror or exc}") from None
        process = self._process
        try:
            os.write(process.stdin_fd, _EXPORT)  # far less than a pipe holds: one write
            answer = process.stdout.readline().strip()
        except OSError:  # a broken pipe: psql has exited, and its exit status says why
            answer = b""
        if not answer:
            returncode = process.finish()
            detail = process.failure(returncode)
            self.close()
            raise failed(f"cannot export a snapshot: psql {target.scrub(detail)}")
        self.id = answer.decode()
        self.taken_at_ns = time.time_ns()

    @property
    def closed(self) -> bool:
        return self._process is None

    def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.finish()
            process.close()
