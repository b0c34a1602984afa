"""The order in which the writer puts the sources' members: a source that prepares in the background
(it has ``ready()``) is written at the first entry boundary after it becomes ready, or at its turn if
it is not ready before; metadata.json stays first, manifest.json last, and the manifest lists and
verifies every member whatever the order."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import pytest

from sddc_backup.archive.entries import ArchiveSource, Entry, EntryType
from sddc_backup.archive.errors import ComponentFailedError
from sddc_backup.archive.reader import MemberInfo
from sddc_backup.archive.writer import write_archive
from tests.archive.builders import BASE, METADATA, PASS, members_of, read


def file_entry(name: str) -> Entry:
    data = f"content of {name}\n".encode()
    return Entry(name, EntryType.FILE, size=len(data), open=lambda: io.BytesIO(data))


@dataclass
class Plain:
    """A source without ``ready()``: written at its turn. Counts the entries it has yielded."""

    name: str
    items: Sequence[Entry]
    yielded: int = 0
    closed: bool = False

    def entries(self) -> Iterator[Entry]:
        try:
            for entry in self.items:
                self.yielded += 1
                yield entry
        finally:
            self.closed = True


@dataclass
class Deferred:
    """A source that prepares in the background: ``is_ready`` says when it is done."""

    name: str
    items: Sequence[Entry]
    is_ready: Callable[[], bool]
    calls: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.calls.append("start")

    def ready(self) -> bool:
        return self.is_ready()

    def entries(self) -> Iterator[Entry]:
        self.calls.append("entries")
        yield from self.items

    def close(self) -> None:
        self.calls.append("close")


def files(prefix: str, count: int) -> list[Entry]:
    return [file_entry(f"{prefix}/{i}") for i in range(count)]


class Recorder:
    """A member sink that keeps the names of the members, in order."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def directory(self, member: MemberInfo) -> None:
        if member.name:
            self.names.append(member.name)

    def symlink(self, member: MemberInfo) -> None:
        self.names.append(member.name)

    def begin_file(self, member: MemberInfo) -> None:
        self.names.append(member.name)

    def write(self, data: bytes) -> None:
        pass

    def end_file(self) -> None:
        pass


def archive(sources: Sequence[ArchiveSource]) -> bytes:
    chunks: list[bytes] = []
    write_archive(BASE, METADATA, sources, PASS, chunks.append, mtime=0)
    return b"".join(chunks)


def order(sources: Sequence[ArchiveSource]) -> list[str]:
    """The member names, as the reader hands them over; checks the whole archive on the way: the
    manifest lists every member (in this order), metadata.json is first and manifest.json last."""
    blob = archive(sources)
    sink = Recorder()
    report = read(blob, sink)  # raises unless the manifest lists and matches every member
    assert report.manifest is not None
    tar_names = [info.name for info, _ in members_of(blob)]  # decrypted by openssl, listed by tarfile
    assert tar_names[0] == f"{BASE}/metadata.json"
    assert tar_names[-1] == f"{BASE}/manifest.json"
    assert tar_names[1:-1] == [f"{BASE}/{name}" for name in sink.names]
    assert [m.name for m in report.manifest.members] == tar_names[:-1]
    assert len(set(tar_names)) == len(tar_names)
    return sink.names


def test_without_ready_sources_the_order_is_the_listed_one() -> None:
    a, b = Plain("a", files("a", 3)), Plain("b", files("b", 2))
    assert order([a, b]) == ["a/0", "a/1", "a/2", "b/0", "b/1"]


def test_a_source_ready_from_the_start_lands_after_the_first_entry() -> None:
    a, b = Plain("a", files("a", 3)), Plain("b", files("b", 2))
    db = Deferred("db", files("db", 2), lambda: True)
    assert order([a, b, db]) == ["a/0", "db/0", "db/1", "a/1", "a/2", "b/0", "b/1"]
    assert db.calls == ["start", "entries", "close"]
    assert a.closed and b.closed


@pytest.mark.parametrize("k", [1, 2, 4, 5])
def test_a_source_that_becomes_ready_after_entry_k_lands_right_after_it(k: int) -> None:
    a = Plain("a", files("a", 5))
    db = Deferred("db", [Entry("db", EntryType.DIR), file_entry("db/dump")], lambda: a.yielded >= k)
    names = order([a, db])
    assert names == [f"a/{i}" for i in range(k)] + ["db", "db/dump"] + [f"a/{i}" for i in range(k, 5)]
    assert db.calls == ["start", "entries", "close"]


def test_a_source_that_becomes_ready_during_a_later_source_lands_there() -> None:
    a, b = Plain("a", files("a", 2)), Plain("b", files("b", 3))
    db = Deferred("db", files("db", 1), lambda: b.yielded >= 2)
    assert order([a, b, db]) == ["a/0", "a/1", "b/0", "b/1", "db/0", "b/2"]


def test_a_source_never_ready_before_its_turn_lands_at_its_turn() -> None:
    a, b = Plain("a", files("a", 3)), Plain("b", files("b", 2))
    db = Deferred("db", files("db", 2), lambda: False)
    c = Plain("c", files("c", 1))
    assert order([a, db, b, c]) == ["a/0", "a/1", "a/2", "db/0", "db/1", "b/0", "b/1", "c/0"]
    assert db.calls == ["start", "entries", "close"]


def test_a_ready_source_listed_first_is_written_first_and_once() -> None:
    db = Deferred("db", files("db", 2), lambda: True)
    a = Plain("a", files("a", 2))
    assert order([db, a]) == ["db/0", "db/1", "a/0", "a/1"]
    assert db.calls == ["start", "entries", "close"]


def test_a_ready_source_is_not_moved_into_one_whose_entries_are_empty() -> None:
    empty = Plain("empty", [])
    db = Deferred("db", files("db", 1), lambda: True)
    a = Plain("a", files("a", 2))
    # No entry boundary in ``empty``: the first is after a/0.
    assert order([empty, a, db]) == ["a/0", "db/0", "a/1"]


def test_a_failure_in_the_early_source_closes_both_iterators() -> None:
    def broken() -> Iterator[Entry]:
        yield file_entry("db/0")
        raise ComponentFailedError("db: pg_dump failed")

    a = Plain("a", files("a", 3))

    @dataclass
    class Failing:
        name: str = "db"
        calls: list[str] = field(default_factory=list)

        def ready(self) -> bool:
            return True

        def entries(self) -> Iterator[Entry]:
            return broken()

        def close(self) -> None:
            self.calls.append("close")

    db = Failing()
    with pytest.raises(ComponentFailedError, match="pg_dump failed"):
        archive([a, db])
    assert a.yielded == 1
    assert a.closed, "the interrupted source's iterator is closed too"
    assert db.calls == ["close"]


def test_two_sources_ready_from_the_start_are_each_written_once() -> None:
    a = Plain("a", files("a", 2))
    db1 = Deferred("db1", files("db1", 2), lambda: True)
    db2 = Deferred("db2", files("db2", 2), lambda: True)
    names = order([a, db1, db2])
    assert sorted(names) == sorted(["a/0", "a/1", "db1/0", "db1/1", "db2/0", "db2/1"])
    assert names[0] == "a/0"
    assert db1.calls == ["start", "entries", "close"]
    assert db2.calls == ["start", "entries", "close"]
