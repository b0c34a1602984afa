"""A backup's upload, run by a child process: ``upload_archive`` (the server) and ``main`` (the child).

Writing the archive (reading files, tar, compression, encryption) and sending it over SFTP are CPU
work, and most of it holds the GIL or runs on the event loop. In the server's process they shared
one interpreter and one event loop with the API: under steady polling a backup ran five times
slower, and requests queued behind it. The child has an interpreter and an event loop of its own, so
the two use separate CPUs (ADR 0019). The server keeps everything before and after the upload: the
configuration, the checks of the stored file, the sidecar, the catalog and retention.

The protocol between the two:

- argv: the number of an inherited pipe for the outcome (``RESULT_FD``);
- stdin: one pickled ``UploadJob``. The passphrase and the location's password travel only here,
  never in argv or the environment;
- stdout: progress, one line per chunk sent: the number of archive bytes read so far. The child
  points its own fd 1 at stderr, so that a stray print cannot be taken for progress;
- the outcome pipe: one pickled ``Uploaded``, or the exception that ended the upload;
- SIGTERM: cancel the upload (the temporary object is removed, ``pg_dump`` is stopped) and exit. The
  kernel sends it too if the server dies, so an orphan never finishes a backup nobody records.

The child runs in a session of its own, so that the server can stop it and its ``pg_dump`` together.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import pickle
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from sddc_backup.domain.backup_config import BackupLocation
from sddc_backup.domain.errors import SddcBackupError
from sddc_backup.domain.storage import PutResult
from sddc_backup.services import event_loop
from sddc_backup.services.appliance import ApplianceLayout
from sddc_backup.services.archive_stream import ArchiveStream
from sddc_backup.services.heap import HeapTrimmer
from sddc_backup.services.locations import LocationAccess

STOP_GRACE = 10.0  # seconds the child gets to remove its temporary object before it is killed
_MODULE = "sddc_backup.services.archive_upload"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class UploadJob:
    """Everything the child needs, as plain data that pickles."""

    name: str  # of the object on the location
    base: str  # the archive's top-level folder
    metadata: Mapping[str, Any]
    layout: ApplianceLayout
    own_settings: dict[str, bytes] = field(repr=False)
    passphrase: bytes = field(repr=False)
    location: BackupLocation = field(repr=False)
    client_keys: tuple[str, ...] = ()
    mtime: float = 0.0
    level: int = 1


@dataclass(frozen=True)
class Uploaded:
    result: PutResult  # what the location stored, and the SHA-256 of what was sent
    size: int  # of the archive the writer produced. Not its manifest: thousands of members that the
    # server would unpickle and keep scattered over its heap, for nothing it reads


class UploadProcessError(SddcBackupError):
    """The child ended without reporting an outcome (killed, or it could not start)."""

    error_code = "BACKUP_UPLOAD_PROCESS_FAILED"
    http_status = 500
    remediation = (
        "The backup's upload process ended without a result: look in the service log and the system "
        "journal for why it stopped (for example killed for lack of memory), then back up again."
    )


# -- the server's side ------------------------------------------------------------------------------


async def upload_archive(job: UploadJob, progress: Callable[[int], None]) -> Uploaded:
    """Run ``job`` in a child; ``progress`` gets the archive bytes sent so far. Raises what the
    upload raised. Cancelled, or on any error, it stops the child and returns once it is gone."""
    result_r, result_w = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            _MODULE,
            str(result_w),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            pass_fds=(result_w,),
            start_new_session=True,
            # Two glibc heaps, as the server has (app.runtime.limit_malloc_arenas), unless set already.
            env={"MALLOC_ARENA_MAX": "2", **os.environ},
        )
    except BaseException:
        os.close(result_r)
        raise
    finally:
        os.close(result_w)
    outcome = asyncio.ensure_future(asyncio.to_thread(_read_all, result_r))
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(pickle.dumps(job))
        await proc.stdin.drain()
        proc.stdin.close()
        while line := await proc.stdout.readline():
            progress(int(line))
        data = await outcome
        await proc.wait()
    finally:
        if proc.returncode is None:
            await _stop(proc)
        with contextlib.suppress(BaseException):
            await outcome
    if not data:
        raise UploadProcessError(
            f"The backup's upload process ended with status {proc.returncode} before it reported a result. "
            "The temporary file it was writing, if any, is hidden, and a backup removes it a day later."
        )
    ended = pickle.loads(data)  # noqa: S301 - written by our own child
    if isinstance(ended, BaseException):
        raise ended
    assert isinstance(ended, Uploaded)
    return ended


def _read_all(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as pipe:
        return pipe.read()


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM to the child's session; SIGKILL to it after ``STOP_GRACE``. Waits for the child."""
    _signal(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), STOP_GRACE)
    except TimeoutError:
        _signal(proc.pid, signal.SIGKILL)  # the whole session: a pg_dump that did not stop goes too
        await proc.wait()


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


# -- the child's side -------------------------------------------------------------------------------


async def _upload(job: UploadJob, progress_fd: int) -> Uploaded:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)

    trimmer = HeapTrimmer()  # the archive's buffers are freed by several threads

    def sent(count: int) -> None:
        os.write(progress_fd, b"%d\n" % count)  # a short line: one write, never split
        trimmer.progress(count)

    stream = ArchiveStream(
        job.base,
        job.metadata,
        lambda: job.layout.components(job.own_settings, job.mtime),
        job.passphrase,
        mtime=job.mtime,
        level=job.level,
        progress=sent,
    )
    storage = await LocationAccess(job.client_keys).open(job.location)
    try:
        result = await storage.put(job.name, stream)
    finally:
        await storage.close()
    assert stream.summary is not None  # set once the stream has been read to its end
    return Uploaded(result, stream.summary.size)


def _send_outcome(fd: int, outcome: object) -> None:
    try:
        data = pickle.dumps(outcome)
    except Exception:  # noqa: BLE001 - an exception that does not pickle still ends the upload
        data = pickle.dumps(RuntimeError(f"{type(outcome).__name__}: {outcome}"))
    with os.fdopen(fd, "wb") as out, contextlib.suppress(BrokenPipeError):
        out.write(data)


def main(argv: list[str] | None = None, stdin: BinaryIO | None = None) -> int:
    with contextlib.suppress(OSError, AttributeError):  # Linux: SIGTERM when the server dies
        ctypes.CDLL("libc.so.6").prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    result_fd = int((argv if argv is not None else sys.argv[1:])[0])
    progress_fd = os.dup(1)
    os.dup2(2, 1)
    job = pickle.load(stdin if stdin is not None else sys.stdin.buffer)  # noqa: S301 - from our parent
    if not isinstance(job, UploadJob):
        raise TypeError("expected an UploadJob on stdin")
    outcome: object
    try:
        outcome = event_loop.run(_upload(job, progress_fd))
    except BaseException as exc:  # noqa: BLE001 - reported to the server, which raises it
        outcome = exc
    os.close(progress_fd)
    _send_outcome(result_fd, outcome)
    return 1 if isinstance(outcome, BaseException) else 0


if __name__ == "__main__":
    # Run with -m, this file is __main__, but the job unpickles as the importable module's
    # UploadJob: the importable module's main must be the one that checks it.
    import importlib

    sys.exit(importlib.import_module(_MODULE).main())
