"""``PipelinedSink``: the inner sink's calls run in a worker thread, in order and whole; a failure on
either side reaches the other; the inner sink's exit runs in the calling thread, after the last step,
with the failure if there was one; and the worker thread is gone once the ``with`` block is left.

The inner sink is an in-memory recorder, and for the end-to-end cases the real ``SafeExtractor`` fed
by the real reader from an archive made by the real writer."""

from __future__ import annotations

import io
import os
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sddc_backup.archive.entries import Entry, EntryType
from sddc_backup.archive.errors import UnsafeMemberError
from sddc_backup.archive.extract import SafeExtractor
from sddc_backup.archive.pipelined import BATCH_BYTES, BATCH_STEPS, QUEUE_BATCHES, PipelinedSink
from sddc_backup.archive.reader import MemberInfo
from tests.archive.builders import Member, hostile, listing, member, our_archive, read

WORKER_NAME = "archive-extract"
Step = tuple[str, Any]  # (method name, its argument; None for end_file)


class Boom(Exception):
    """What the recording sink raises when told to fail."""


def info(name: str, kind: EntryType = EntryType.FILE, *, size: int = 0, target: str = "") -> MemberInfo:
    return MemberInfo(name, kind, 0o640, 1_700_000_000_123_456_789, 0, 0, size, target)


def script(files: int, *, big_every: int = 0) -> list[Step]:
    """A member stream as a reader makes it: directories, links, and files in several writes, each
    write with its own bytes; every ``big_every``-th file carries a write of 100 KiB."""
    steps: list[Step] = []
    for i in range(files):
        if i % 50 == 0:
            steps.append(("directory", info(f"d{i}", EntryType.DIR)))
        if i % 7 == 0:
            steps.append(("symlink", info(f"d{i - i % 50}/l{i}", EntryType.SYMLINK, target=f"f{i}")))
        chunks = [bytes([i % 251]) * (i % 13 + 1), f"file {i}\n".encode()]
        if big_every and i % big_every == 0:
            chunks.append(os.urandom(100 * 1024))
        steps.append(("begin_file", info(f"d{i - i % 50}/f{i}", size=sum(map(len, chunks)))))
        steps.extend(("write", chunk) for chunk in chunks)
        steps.append(("end_file", None))
    return steps


def send(sink: PipelinedSink, step: Step) -> None:
    name, arg = step
    if name == "end_file":
        sink.end_file()
    else:
        getattr(sink, name)(arg)


class RecordingSink:
    """A managed member sink that records every call, and the thread that made it.

    ``fail_at``: the index of the step that raises ``error`` (it is recorded in ``attempted``, not in
    ``applied``). ``gate``: the first step waits for it (at most 10 s)."""

    def __init__(self, *, fail_at: int | None = None, gate: threading.Event | None = None) -> None:
        self.fail_at = fail_at
        self.gate = gate
        self.error = Boom("the disk is full")
        self.attempted: list[Step] = []
        self.applied: list[Step] = []
        self.step_threads: set[threading.Thread] = set()
        self.entered: list[threading.Thread] = []
        self.exits: list[tuple[Any, Any, threading.Thread, int]] = []

    def __enter__(self) -> RecordingSink:
        self.entered.append(threading.current_thread())
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        self.exits.append((kind, value, threading.current_thread(), len(self.attempted)))

    def _step(self, name: str, arg: Any) -> None:
        self.step_threads.add(threading.current_thread())
        if self.gate is not None and not self.attempted:
            assert self.gate.wait(10)
        self.attempted.append((name, arg))
        if len(self.attempted) - 1 == self.fail_at:
            raise self.error
        self.applied.append((name, arg))

    def directory(self, member: MemberInfo) -> None:
        self._step("directory", member)

    def symlink(self, member: MemberInfo) -> None:
        self._step("symlink", member)

    def begin_file(self, member: MemberInfo) -> None:
        self._step("begin_file", member)

    def write(self, data: bytes) -> None:
        self._step("write", data)

    def end_file(self) -> None:
        self._step("end_file", None)


def workers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == WORKER_NAME}


@pytest.fixture(autouse=True)
def no_worker_left() -> Iterator[None]:
    """(d) in every case: no worker thread outlives the ``with`` block of its sink."""
    before = workers()
    yield
    assert workers() == before


def assert_worker_ended(inner: RecordingSink, *, ran: bool = True) -> None:
    """The steps all ran in one thread, the worker, which has ended (``ran``: at least one step ran)."""
    assert len(inner.step_threads) == 1 if ran else len(inner.step_threads) <= 1
    for worker in inner.step_threads:
        assert worker is not threading.current_thread()
        assert worker.name == WORKER_NAME
        assert not worker.is_alive()


# --- in order, whole ----------------------------------------------------------------------------------


def test_every_call_reaches_the_inner_sink_in_order_across_many_batches() -> None:
    steps = script(800, big_every=40)
    total = sum(len(arg) for name, arg in steps if name == "write")
    assert len(steps) > 3 * QUEUE_BATCHES * BATCH_STEPS
    assert total > 3 * BATCH_BYTES
    inner = RecordingSink()
    with PipelinedSink(inner) as sink:
        assert isinstance(sink, PipelinedSink)
        for step in steps:
            send(sink, step)
    assert inner.applied == steps
    assert all(a is b for (_, a), (_, b) in zip(inner.applied, steps, strict=True))  # not copied
    assert inner.entered == [threading.current_thread()]
    # Exactly one exit, without a failure, in this thread, once every step had been applied.
    assert inner.exits == [(None, None, threading.current_thread(), len(steps))]
    assert_worker_ended(inner)


def test_a_stream_shorter_than_one_batch_is_applied_at_the_exit() -> None:
    steps = script(3)
    assert len(steps) < BATCH_STEPS
    inner = RecordingSink()
    with PipelinedSink(inner) as sink:
        for step in steps:
            send(sink, step)
    assert inner.applied == steps
    assert inner.exits == [(None, None, threading.current_thread(), len(steps))]
    assert_worker_ended(inner)


def test_an_empty_stream_enters_and_exits_the_inner_sink_once() -> None:
    inner = RecordingSink()
    with PipelinedSink(inner):
        pass
    assert inner.attempted == []
    assert inner.entered == [threading.current_thread()]
    assert inner.exits == [(None, None, threading.current_thread(), 0)]


# --- a failure in the worker --------------------------------------------------------------------------


def test_a_failure_in_the_worker_is_raised_by_a_later_call_and_stops_the_steps() -> None:
    # Enough steps after the failing one that the reading thread must wait for the worker to be past
    # it (the queue holds QUEUE_BATCHES batches): one of the later calls has to raise.
    steps = script(2000)
    fail_at = 10
    assert len(steps) - fail_at > (QUEUE_BATCHES + 3) * BATCH_STEPS
    inner = RecordingSink(fail_at=fail_at)
    sent = 0
    with pytest.raises(Boom) as caught, PipelinedSink(inner) as sink:
        for step in steps:
            send(sink, step)
            sent += 1
    assert caught.value is inner.error
    assert sent < len(steps), "a call after the failure must raise, not only the exit"
    assert inner.attempted == steps[: fail_at + 1]
    assert inner.applied == steps[:fail_at]
    kind, value, thread, attempted = inner.exits[0]
    assert len(inner.exits) == 1
    assert (kind, value, thread) == (Boom, inner.error, threading.current_thread())
    assert attempted == fail_at + 1
    assert_worker_ended(inner)


def test_a_later_call_keeps_raising_the_same_failure() -> None:
    steps = script(2000)
    inner = RecordingSink(fail_at=0)
    sink = PipelinedSink(inner)
    raised: list[BaseException] = []
    with pytest.raises(Boom), sink:
        for step in steps:
            try:
                send(sink, step)
            except Boom as exc:
                raised.append(exc)
                if len(raised) == 3:
                    raise
    assert raised == [inner.error] * 3
    assert all(exc is inner.error for exc in raised)
    assert inner.applied == []
    assert [e[:2] for e in inner.exits] == [(Boom, inner.error)]


def test_a_failure_in_the_last_step_is_raised_by_the_exit() -> None:
    steps = script(300)
    assert len(steps) % BATCH_STEPS != 0  # the last step is sent at the exit only
    inner = RecordingSink(fail_at=len(steps) - 1)
    finished = False
    with pytest.raises(Boom) as caught, PipelinedSink(inner) as sink:
        for step in steps:
            send(sink, step)
        finished = True
    assert finished
    assert caught.value is inner.error
    assert inner.attempted == steps
    assert inner.applied == steps[:-1]
    assert [e[:3] for e in inner.exits] == [(Boom, inner.error, threading.current_thread())]
    assert_worker_ended(inner)


def test_a_failure_in_a_flushed_batch_is_raised_by_the_exit_when_no_call_follows() -> None:
    steps = script(300)
    fail_at = len(steps) - 2 * BATCH_STEPS  # in a batch that is sent before the exit
    inner = RecordingSink(fail_at=fail_at)
    with pytest.raises(Boom) as caught, PipelinedSink(inner) as sink:  # a call raises, or the exit
        for step in steps:
            send(sink, step)
    assert caught.value is inner.error
    assert inner.attempted == steps[: fail_at + 1]
    assert [e[:3] for e in inner.exits] == [(Boom, inner.error, threading.current_thread())]
    assert_worker_ended(inner)


# --- a failure in the calling thread ------------------------------------------------------------------


class ReaderFailed(Exception):
    pass


def test_a_failure_of_the_caller_reaches_the_inner_exit() -> None:
    steps = script(500)
    inner = RecordingSink()
    error = ReaderFailed("the archive is corrupt")
    with pytest.raises(ReaderFailed) as caught, PipelinedSink(inner) as sink:
        for step in steps[:1000]:
            send(sink, step)
        raise error
    assert caught.value is error
    assert inner.applied == steps[: len(inner.applied)]  # what ran, ran in order
    assert len(inner.applied) <= 1000
    assert [e[:3] for e in inner.exits] == [(ReaderFailed, error, threading.current_thread())]
    assert_worker_ended(inner, ran=False)  # the worker may not have started on a batch yet


def test_queued_steps_are_dropped_when_the_caller_fails_with_a_full_queue() -> None:
    """The worker is held in the first step while the caller fills the queue and fails; the exit
    neither hangs on the full queue nor applies what is queued."""
    gate = threading.Event()
    inner = RecordingSink(gate=gate)
    steps = script(700)
    queued = (QUEUE_BATCHES + 1) * BATCH_STEPS + 10  # one batch in the worker, a full queue, and more
    assert len(steps) > queued
    error = ReaderFailed("the archive is corrupt")
    outcome: list[BaseException] = []

    def reading_thread() -> None:
        try:
            with PipelinedSink(inner) as sink:
                for step in steps[:queued]:
                    send(sink, step)
                threading.Timer(0.5, gate.set).start()  # lets the worker go, once the caller failed
                raise error
        except BaseException as exc:  # noqa: BLE001 - checked below
            outcome.append(exc)

    caller = threading.Thread(target=reading_thread)
    caller.start()
    caller.join(15)
    gate.set()
    assert not caller.is_alive(), "the exit hung"
    assert outcome == [error]
    assert inner.applied == steps[:1], "the queued steps must be dropped"
    assert [e[:3] for e in inner.exits] == [(ReaderFailed, error, caller)]
    assert_worker_ended(inner)


# --- bounded -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "most"),
    [(BATCH_BYTES, QUEUE_BATCHES + 2), (1, (QUEUE_BATCHES + 2) * BATCH_STEPS)],
    ids=["by-bytes", "by-steps"],
)
def test_the_caller_waits_while_the_worker_lags_by_a_full_queue(size: int, most: int) -> None:
    """With the worker held in its first step, the calling thread gets only so far ahead (whether the
    batches fill up by bytes or by steps) and then waits: memory stays bounded."""
    gate = threading.Event()
    inner = RecordingSink(gate=gate)
    chunk = bytes(size)
    writes = 4 * most
    returned = 0

    def reading_thread() -> None:
        nonlocal returned
        with PipelinedSink(inner) as sink:
            sink.begin_file(info("big", size=size * writes))
            for _ in range(writes):
                sink.write(chunk)
                returned += 1
            sink.end_file()

    caller = threading.Thread(target=reading_thread)
    caller.start()
    seen = -1
    while seen != returned and caller.is_alive():  # until the caller stops getting further
        seen = returned
        time.sleep(0.3)
    held = returned
    gate.set()
    caller.join(15)
    assert not caller.is_alive()
    assert held < most, f"the caller got {held} writes ahead of a stuck worker"
    begin: Step = ("begin_file", info("big", size=size * writes))
    assert inner.applied == [begin, *[("write", chunk)] * writes, ("end_file", None)]
    assert_worker_ended(inner)


# --- with the real extractor --------------------------------------------------------------------------

NS = 1_700_000_000_123_456_789


def file_at(name: str, data: bytes, mode: int, mtime_ns: int) -> Entry:
    return Entry(
        name, EntryType.FILE, mode=mode, mtime_ns=mtime_ns, size=len(data), open=lambda: io.BytesIO(data)
    )


def tree_entries() -> list[Entry]:
    """Directories, links and files with exact times, enough of them (and one large file) that the
    extraction spans many batches of steps and of bytes."""
    entries = [Entry("conf", EntryType.DIR, mode=0o750, mtime_ns=NS + 1)]
    for d in range(6):
        entries.append(Entry(f"conf/d{d}", EntryType.DIR, mode=(0o755, 0o700)[d % 2], mtime_ns=NS + d * 7))
        for f in range(100):
            data = f"{d}/{f}\n".encode() * (f % 9 + 1)
            mode = (0o600, 0o640, 0o755)[f % 3]
            entries.append(file_at(f"conf/d{d}/f{f}", data, mode, NS + d * 1000 + f * 1_000_003))
        entries.append(Entry(f"conf/d{d}/current", EntryType.SYMLINK, target="f1", mtime_ns=NS + 5))
    entries.append(file_at("conf/big.bin", os.urandom(3 * BATCH_BYTES + 12345), 0o600, NS + 999))
    entries.append(Entry("conf/up", EntryType.SYMLINK, target="d0/../d1", mtime_ns=NS + 3))
    return entries


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Type, bytes or link target, permission bits and mtime to the nanosecond, of every path under
    ``root`` (not ``root`` itself: the extractor creates it, with the time of the extraction)."""
    found: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = ("link", str(path.readlink()), st.st_mtime_ns)
        elif path.is_dir():
            found[rel] = ("dir", st.st_mode & 0o7777, st.st_mtime_ns)
        else:
            found[rel] = ("file", path.read_bytes(), st.st_mode & 0o7777, st.st_mtime_ns)
    return found


def expected(entries: list[Entry]) -> dict[str, tuple[object, ...]]:
    found: dict[str, tuple[object, ...]] = {}
    for entry in entries:
        if entry.type is EntryType.SYMLINK:
            found[entry.name] = ("link", entry.target, entry.mtime_ns)
        elif entry.type is EntryType.DIR:
            found[entry.name] = ("dir", entry.mode, entry.mtime_ns)
        else:
            assert entry.open is not None
            found[entry.name] = ("file", entry.open().read(), entry.mode, entry.mtime_ns)
    return found


def test_a_real_archive_extracts_the_same_through_the_pipeline(tmp_path: Path) -> None:
    entries = tree_entries()
    blob = our_archive(entries)

    alone = SafeExtractor(tmp_path / "alone")
    with alone:
        read(blob, alone, chunk=65536)

    with PipelinedSink(SafeExtractor(tmp_path / "piped")) as sink:
        report = read(blob, sink, chunk=65536)
    assert not report.legacy

    piped = snapshot(tmp_path / "piped")
    assert piped == snapshot(tmp_path / "alone")
    assert piped == expected(entries)


def test_a_failure_at_the_inner_exit_still_removes_the_tree(tmp_path: Path) -> None:
    # Each link passes the reader; together they lead out of the folder, which only the extractor's
    # final check (in its exit, in the calling thread) sees.
    entries = [
        Entry("conf", EntryType.DIR),
        Entry("conf/here", EntryType.SYMLINK, target="."),
        Entry("conf/out", EntryType.SYMLINK, target="here/../.."),
    ]
    root = tmp_path / "root"
    before = listing(tmp_path)
    blob = our_archive(entries)
    with (
        pytest.raises(UnsafeMemberError, match="leads out of the backup"),
        PipelinedSink(SafeExtractor(root)) as sink,
    ):
        read(blob, sink)
    assert not root.exists()
    assert listing(tmp_path) == before


REG, DIR, SYM = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE
PWNED = b"written outside the root\n"


def padding(count: int) -> list[Member]:
    """Harmless members, so that the hostile one comes batches after the start."""
    return [member("base/pad", DIR)] + [member(f"base/pad/f{i}", data=b"x" * i) for i in range(count)]


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([member("base/d", SYM, link="."), member("base/d/x", data=PWNED)], "through a link"),
        (
            [member("base/sub", DIR), member("base/d", SYM, link="sub"), member("base/d/x", data=PWNED)],
            "through a link",
        ),
        ([member("base/d", SYM, link="{canary}"), member("base/d/e/x", data=PWNED)], "through a link"),
        (
            [*padding(600), member("base/d", SYM, link="{canary}"), member("base/d/x", data=PWNED)],
            "through a link",
        ),
        ([*padding(600), member("base/l", SYM, link="/etc")], "outside the backup"),
        ([*padding(600), member("base/../canary/x", data=PWNED)], "climbs out"),
    ],
    ids=[
        "link-to-itself",
        "link-to-sibling",
        "absolute-link-new-dir",
        "late-absolute-link",
        "late-absolute-link-outside",
        "late-reader-refusal",
    ],
)
def test_a_hostile_archive_fails_through_the_pipeline_and_leaves_nothing(
    tmp_path: Path, members: list[Member], message: str
) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep").write_bytes(b"canary\n")
    for info_, _ in members:
        info_.linkname = info_.linkname.format(canary=canary)
    root = tmp_path / "root"
    blob = hostile(members)
    before = listing(tmp_path)
    sink = PipelinedSink(SafeExtractor(root, (str(canary),)))
    with pytest.raises(UnsafeMemberError, match=message), sink:
        read(blob, sink, chunk=4096)
    assert not root.exists(), "the extraction must be aborted"
    assert listing(tmp_path) == before
    assert [p.name for p in canary.iterdir()] == ["keep"]
    assert (canary / "keep").read_bytes() == b"canary\n"
