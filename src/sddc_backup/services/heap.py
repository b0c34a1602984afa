"""Giving freed heap memory back to the system: during a long stream (a backup's upload), and in
the server after each task.

A streaming pipeline allocates and frees buffers in several threads, in sizes that vary with the
compression. glibc keeps what they free, scattered through its heaps, and the process grows by tens
of megabytes over a large backup though it holds little. ``malloc_trim`` gives the free
pages back; it costs well under a millisecond.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

TRIM_EVERY = 16 << 20  # bytes streamed between two trims


def _load_malloc_trim() -> Callable[[], object]:
    """glibc's ``malloc_trim(0)``, or nothing where there is none (another C library)."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: trim(0)


trim_heap = _load_malloc_trim()


class HeapTrimmer:
    """Calls ``trim`` each time the progress crosses another ``every`` bytes."""

    def __init__(self, trim: Callable[[], object] = trim_heap, every: int = TRIM_EVERY) -> None:
        self._trim, self._every, self._next = trim, every, every

    def progress(self, count: int) -> None:
        if count >= self._next:
            self._trim()
            self._next = count + self._every
