"""A member sink that does its work in a thread of its own, behind a bounded queue.

Reading an archive (decrypt, inflate, parse, hash) and writing the members out (creating files and
directories, writing, setting modes and times) are both heavy, and the second is mostly system calls
that release the GIL. With a thread each, they overlap instead of taking turns.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol

from sddc_backup.archive.reader import MemberInfo, MemberSink

# Steps go over in batches, since a queue hand-over costs about as much as a small step itself.
BATCH_BYTES = 1 << 18
BATCH_STEPS = 256
QUEUE_BATCHES = 4  # how far the writing thread may lag behind, at most: memory stays flat

_Step = tuple[Callable[..., None], tuple[Any, ...]]


class ManagedSink(MemberSink, Protocol):
    """A sink used as a context manager (``SafeExtractor``): its exit finishes or aborts it."""

    def __enter__(self) -> Any: ...
    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: Any) -> Any: ...


class PipelinedSink:
    """Passes every member to ``inner`` in a worker thread, in order.

    A failure in the worker is raised by the next call that the reading thread makes (or by the
    exit), and the steps still queued are dropped. ``inner``'s own exit runs in the calling thread
    after the last step: a successful extraction is finished there, a failed one aborted.
    """

    def __init__(self, inner: ManagedSink) -> None:
        self._inner = inner
        self._steps: queue.Queue[list[_Step] | None] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._batch: list[_Step] = []
        self._batch_bytes = 0
        self._error: BaseException | None = None
        self._abandoned = False
        self._worker = threading.Thread(target=self._work, name="archive-extract", daemon=True)

    def __enter__(self) -> PipelinedSink:
        self._inner.__enter__()
        self._worker.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: Any) -> None:
        self._abandoned = kind is not None  # what is still queued is not wanted
        if self._batch and not self._abandoned:
            self._steps.put(self._batch)
        self._steps.put(None)
        self._worker.join()
        error = self._error if kind is None else None
        if error is not None:
            self._inner.__exit__(type(error), error, error.__traceback__)
            raise error
        self._inner.__exit__(kind, value, tb)

    # -- MemberSink ------------------------------------------------------------------------------------

    def directory(self, member: MemberInfo) -> None:
        self._put((self._inner.directory, (member,)))

    def symlink(self, member: MemberInfo) -> None:
        self._put((self._inner.symlink, (member,)))

    def begin_file(self, member: MemberInfo) -> None:
        self._put((self._inner.begin_file, (member,)))

    def write(self, data: bytes) -> None:
        self._batch_bytes += len(data)
        self._put((self._inner.write, (data,)))

    def end_file(self) -> None:
        self._put((self._inner.end_file, ()))

    # -- the two threads -----------------------------------------------------------------------------

    def _put(self, step: _Step) -> None:
        if self._error is not None:
            raise self._error
        self._batch.append(step)
        if self._batch_bytes >= BATCH_BYTES or len(self._batch) >= BATCH_STEPS:
            # The worker drains the queue whatever happens, so this never hangs.
            self._steps.put(self._batch)
            self._batch, self._batch_bytes = [], 0

    def _work(self) -> None:
        while (batch := self._steps.get()) is not None:
            for call, args in batch:
                if self._error is not None or self._abandoned:
                    break  # drain: the reading thread must never block on a full queue
                try:
                    call(*args)
                except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
                    self._error = exc
