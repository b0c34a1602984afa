"""Giving freed heap memory back to the system during a stream."""

from __future__ import annotations

from sddc_backup.services.heap import HeapTrimmer, trim_heap


def test_the_heap_is_trimmed_each_time_another_step_of_the_stream_has_passed() -> None:
    trims: list[int] = []
    progress: list[int] = []
    trimmer = HeapTrimmer(lambda: trims.append(progress[-1]), every=100)
    for count in (10, 60, 99, 100, 150, 230, 260, 299, 400, 900):
        progress.append(count)
        trimmer.progress(count)
    # At the first count at or past 100, then 100 bytes after the previous trim each time.
    assert trims == [100, 230, 400, 900]


def test_the_heap_can_be_trimmed_here() -> None:
    # The C library of the machines the service runs on has malloc_trim: the call must not be a no-op.
    assert trim_heap() in (0, 1)
