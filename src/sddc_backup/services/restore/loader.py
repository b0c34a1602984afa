"""The database dump loaded into the new database while the rest of the backup is still extracting.

The extraction writes the dump into the staging directory as usual; a ``DumpLoader`` thread follows
that file as it grows and sends it on to ``psql``. The extraction never waits for the database (the
file is the buffer), and the load overlaps with everything the archive holds after the dump.

Nothing here touches the live database: the load goes into the swap's ``new`` database, which the
restore journal names before the load starts, so a failure or a crash at any point drops it. The
archive is only known to be intact when the extraction ends; until then the new database holds
unverified data, and the restore does not swap it in before then.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

from sddc_backup.archive.extract import SafeExtractor
from sddc_backup.archive.reader import MemberInfo
from sddc_backup.domain.restore import DatabaseSwap
from sddc_backup.services.components.postgres_restore import DumpFeed
from sddc_backup.services.restore.database import DatabaseSwapper

SEND_SIZE = 1 << 20


class DumpLoader:
    """Loads one growing dump file into ``swap.new``; see the module docstring.

    ``grew(path, size)`` and ``complete()`` come from the extracting thread; ``wait()`` returns once
    the load is committed and raises its failure; ``stop()`` kills a load that is no longer wanted.
    """

    def __init__(self, swapper: DatabaseSwapper, swap: DatabaseSwap) -> None:
        self._swapper, self._swap = swapper, swap
        self._changed = threading.Condition()
        self._path: Path | None = None
        self._size = 0
        self._complete = self._stopped = False
        self._feed: DumpFeed | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def failure(self) -> BaseException | None:
        """Why the load failed, as soon as it has (the extraction can stop early)."""
        return self._error

    def grew(self, path: Path, size: int) -> None:
        """The dump at ``path`` now holds ``size`` bytes. The first call starts the load."""
        with self._changed:
            self._path, self._size = path, size
            self._changed.notify()
        if self._thread is None:
            thread = threading.Thread(target=self._run, name="restore-dump-load", daemon=True)
            thread.start()
            self._thread = thread  # only once started: wait() and stop() may join it from now on

    def complete(self) -> None:
        """The dump file is whole: what the thread has not sent yet is the rest of the dump."""
        with self._changed:
            self._complete = True
            self._changed.notify()

    def wait(self) -> None:
        """Wait for the load to end; raises its failure (a ``ComponentFailedError`` naming psql's)."""
        if self._thread is None:
            raise RuntimeError("the backup's database dump was never extracted")
        self._thread.join()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Kill the load (if it runs) and wait for the thread, which drops the new database."""
        with self._changed:
            self._stopped = True
            self._changed.notify()
            feed = self._feed
        if feed is not None:
            feed.interrupt()  # a send blocked on a psql that reads slowly fails at once
        if self._thread is not None:
            self._thread.join()

    # -- the loading thread ------------------------------------------------------------------------

    def _run(self) -> None:
        feed: DumpFeed | None = None
        try:
            with self._changed:
                path = self._path
            assert path is not None
            feed = self._swapper.feed(self._swap, str(path))
            with self._changed:
                self._feed = feed
            self._send(path, feed)
            if self._stopped:
                feed.kill()
            else:
                feed.finish()
        except BaseException as exc:  # noqa: BLE001 - the thread's failure is raised by wait()
            if feed is not None:
                with contextlib.suppress(Exception):
                    feed.kill()
            if not self._stopped:
                self._error = exc

    def _send(self, path: Path, feed: DumpFeed) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            sent = 0
            while True:
                with self._changed:
                    while self._size == sent and not self._complete and not self._stopped:
                        self._changed.wait()
                    size, complete = self._size, self._complete
                if self._stopped:
                    return
                while sent < size:
                    sent += feed.send_from(fd, sent, min(SEND_SIZE, size - sent))
                if complete and sent == self._size:
                    return
        finally:
            os.close(fd)


class LoadingSink:
    """A ``MemberSink`` that passes everything to ``inner`` (the extractor writing the staging
    directory under ``root``) and tells ``loader`` how far the member ``member`` has been written."""

    def __init__(self, inner: SafeExtractor, root: Path, member: str, loader: DumpLoader) -> None:
        self._inner = inner
        self._root, self._member, self._loader = root, member, loader
        self._written: int | None = None  # bytes of the dump so far, while it is being written

    def __enter__(self) -> LoadingSink:
        self._inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)

    def directory(self, member: MemberInfo) -> None:
        self._inner.directory(member)

    def symlink(self, member: MemberInfo) -> None:
        self._inner.symlink(member)

    def begin_file(self, member: MemberInfo) -> None:
        self._inner.begin_file(member)
        if member.name == self._member:
            self._written = 0
            self._loader.grew(self._root / member.name, 0)

    def write(self, data: bytes) -> None:
        self._inner.write(data)
        if self._written is not None:
            self._written += len(data)
            self._loader.grew(self._root / self._member, self._written)
            if self._loader.failure is not None:
                raise self._loader.failure  # psql gave up: no need to read the rest of the backup

    def end_file(self) -> None:
        self._inner.end_file()
        if self._written is not None:
            self._written = None
            self._loader.complete()
