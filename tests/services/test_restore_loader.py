"""The database dump loaded while it is still being extracted, against a real PostgreSQL cluster: a
``DumpLoader`` following a growing file, the ``LoadingSink`` around a real ``SafeExtractor``, a dump
that fails, a load stopped in the middle, and a database that a crash left under the new name."""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from sddc_backup.archive.entries import EntryType
from sddc_backup.archive.errors import ComponentFailedError
from sddc_backup.archive.extract import SafeExtractor
from sddc_backup.archive.reader import MemberInfo
from sddc_backup.domain.restore import DatabaseSwap
from sddc_backup.services.components.postgres import MEMBER
from sddc_backup.services.restore.loader import DumpLoader, LoadingSink
from tests.services.conftest import Cluster
from tests.services.test_restore_database import DUMP, ITEMS, RESTORE_ID, items, swapper

THREAD = "restore-dump-load"
DEADLINE = 30.0
BIG_ROWS = 200_000
DUPLICATE = "INSERT INTO public.items VALUES (1, 'a duplicate key');\n"
BIG_HEADER = """SET client_encoding = 'UTF8';
CREATE TABLE public.marker (what text NOT NULL);
CREATE TABLE public.big (id integer PRIMARY KEY, name text NOT NULL);
COPY public.big (id, name) FROM stdin;
"""
# sendfile(2), as /proc/<pid>/task/<tid>/syscall numbers it
SENDFILE = {"x86_64": 40, "aarch64": 71}


class Load:
    """The live database (``marker`` = old), its planned swap and a loader for it."""

    def __init__(self, cluster: Cluster, name: str) -> None:
        cluster.create(name, "old")
        self.swapper = swapper(cluster, name)
        self.swap: DatabaseSwap = self.swapper.plan(RESTORE_ID)
        self.loader = DumpLoader(self.swapper, self.swap)


@pytest.fixture
def start(cluster: Cluster, name: str) -> Iterator[Callable[[], Load]]:
    """Makes a ``Load``; whatever loaders are left running at the end are stopped (before the
    databases are dropped by ``name``)."""
    made: list[Load] = []

    def make() -> Load:
        made.append(Load(cluster, name))
        return made[-1]

    yield make
    for load in made:
        load.loader.stop()


def until(condition: Callable[[], object], what: str, deadline: float = DEADLINE) -> None:
    """Poll ``condition`` until it holds; fail after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline}s waiting for {what}")
        time.sleep(0.01)


def sessions(cluster: Cluster, database: str) -> list[tuple[str, str]]:
    """(state, query) of the psql sessions on ``database``."""
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT state, query FROM pg_stat_activity WHERE datname = %s AND application_name = 'psql'",
            (database,),
        ).fetchall()
    return [(str(state), str(query)) for state, query in rows]


def tables(cluster: Cluster, database: str) -> set[str]:
    with psycopg.connect(cluster.url(database), autocommit=True) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {str(r[0]) for r in rows}


def psql_children(database: str) -> list[int]:
    """Processes of this one running psql on ``database`` (its name is unique to the test)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        ours = ppid == os.getpid() and Path(os.fsdecode(argv[0])).name == "psql"
        if ours and any(database.encode() in arg for arg in argv[1:]):
            found.append(int(entry.name))
    return found


def loader_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == THREAD}


def in_sendfile(thread: threading.Thread) -> bool:
    """Whether ``thread`` is blocked in sendfile(2) right now."""
    number = SENDFILE[platform.machine()]
    try:
        fields = Path(f"/proc/self/task/{thread.native_id}/syscall").read_text().split()
    except OSError:
        return False
    return bool(fields) and fields[0] == str(number)


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


class Writer(threading.Thread):
    """Writes ``chunks`` to ``path`` one by one as the extraction would, telling the loader after
    each piece; ``complete()`` at the end unless ``finish`` is false. Re-raises in ``join_checked``."""

    def __init__(self, loader: DumpLoader, path: Path, chunks: list[bytes], *, pause: float) -> None:
        super().__init__(name="test-dump-writer", daemon=True)
        self.loader, self.path, self.chunks, self.pause = loader, path, chunks, pause
        self.before_complete: Callable[[], None] = lambda: None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            written = 0
            with self.path.open("xb") as out:
                for piece in self.chunks:
                    out.write(piece)
                    out.flush()
                    written += len(piece)
                    self.loader.grew(self.path, written)
                    time.sleep(self.pause)
            self.before_complete()
            self.loader.complete()
        except BaseException as exc:  # noqa: BLE001 - raised again by join_checked
            self.error = exc

    def join_checked(self) -> None:
        self.join(DEADLINE)
        assert not self.is_alive()
        if self.error is not None:
            raise self.error


def test_a_dump_written_in_pieces_while_it_loads_ends_up_whole_in_the_new_database(
    cluster: Cluster, name: str, start: Callable[[], Load], tmp_path: Path
) -> None:
    load = start()
    data = DUMP.encode()
    cut = data.index("✓".encode()) + 1  # pieces end in the middle of lines and of a character
    chunks = [*pieces(data[:cut], 23), *pieces(data[cut:], 23)]
    assert len(chunks) > 10
    writer = Writer(load.loader, tmp_path / "dump.sql", chunks, pause=0.02)
    writer.start()
    writer.join_checked()
    load.loader.wait()
    assert load.loader.failure is None
    assert tables(cluster, load.swap.new) == {"marker", "items"}
    assert (cluster.marker(load.swap.new), items(cluster, load.swap.new)) == ("new", ITEMS)
    assert cluster.names(name) == {name, load.swap.new}
    assert (cluster.marker(name), tables(cluster, name)) == ("old", {"marker"})
    assert sessions(cluster, load.swap.new) == []  # psql has gone


def test_the_load_runs_while_the_dump_is_still_being_written(
    cluster: Cluster, name: str, start: Callable[[], Load], tmp_path: Path
) -> None:
    load = start()
    seen: list[list[tuple[str, str]]] = []

    def psql_is_loading() -> None:
        """Before complete(): psql is connected to the new database, inside its single transaction."""
        until(lambda: sessions(cluster, load.swap.new), "psql to connect to the new database")
        until(
            lambda: any(state == "idle in transaction" for state, _ in sessions(cluster, load.swap.new)),
            "psql to run the first statements in its transaction",
        )
        seen.append(sessions(cluster, load.swap.new))
        assert load.swap.new in cluster.names(name)

    writer = Writer(load.loader, tmp_path / "dump.sql", pieces(DUMP.encode(), 64), pause=0.01)
    writer.before_complete = psql_is_loading
    writer.start()
    writer.join_checked()
    assert seen and len(seen[0]) == 1
    load.loader.wait()
    assert (cluster.marker(load.swap.new), items(cluster, load.swap.new)) == ("new", ITEMS)
    assert cluster.marker(name) == "old"


def test_a_dump_that_fails_to_load_raises_and_leaves_no_new_database(
    cluster: Cluster, name: str, start: Callable[[], Load], tmp_path: Path
) -> None:
    load = start()
    writer = Writer(load.loader, tmp_path / "dump.sql", pieces((DUMP + DUPLICATE).encode(), 100), pause=0.01)
    writer.start()
    writer.join_checked()
    with pytest.raises(ComponentFailedError, match="cannot be loaded") as raised:
        load.loader.wait()
    assert "duplicate key" in str(raised.value)
    assert load.loader.failure is raised.value
    with pytest.raises(ComponentFailedError, match="cannot be loaded"):
        load.loader.wait()  # again: the same failure
    assert cluster.names(name) == {name}
    assert (cluster.marker(name), tables(cluster, name)) == ("old", {"marker"})
    assert psql_children(load.swap.new) == []


def member(name: str, kind: EntryType = EntryType.FILE, size: int = 0) -> MemberInfo:
    mode = 0o755 if kind is EntryType.DIR else 0o640
    return MemberInfo(
        name=name, type=kind, mode=mode, mtime_ns=1_700_000_000 * 10**9, uid=0, gid=0, size=size
    )


class Recording(DumpLoader):
    """The real loader, which also records what it was told."""

    def __init__(self, load: Load) -> None:
        super().__init__(load.swapper, load.swap)
        self.grown: list[tuple[Path, int]] = []
        self.completed = 0

    def grew(self, path: Path, size: int) -> None:
        self.grown.append((path, size))
        super().grew(path, size)

    def complete(self) -> None:
        self.completed += 1
        super().complete()


def extract_file(sink: LoadingSink, name: str, data: bytes, size: int) -> None:
    sink.begin_file(member(name, size=len(data)))
    for piece in pieces(data, size):
        sink.write(piece)
    sink.end_file()


def test_the_loading_sink_extracts_everything_and_loads_only_the_dump(
    cluster: Cluster, name: str, start: Callable[[], Load], tmp_path: Path
) -> None:
    load = start()
    loader = Recording(load)
    load.loader = loader  # stopped at the end by the fixture
    root = tmp_path / "staging"
    dump = DUMP.encode()
    others = {"etc/before.conf": b"before the dump\n" * 100, "zz/after.txt": b"after the dump\n" * 100}
    with LoadingSink(SafeExtractor(root), root, MEMBER, loader) as sink:
        sink.directory(member("etc", EntryType.DIR))
        extract_file(sink, "etc/before.conf", others["etc/before.conf"], 100)
        assert (loader.grown, loader.completed) == ([], 0)
        assert not loader.started
        sink.directory(member("database", EntryType.DIR))
        extract_file(sink, MEMBER, dump, 50)
        assert loader.started
        grown = list(loader.grown)
        assert loader.completed == 1
        sink.directory(member("zz", EntryType.DIR))
        extract_file(sink, "zz/after.txt", others["zz/after.txt"], 100)
        assert (loader.grown, loader.completed) == (grown, 1)  # nothing about the files after it either
    loader.wait()

    assert {path for path, _ in grown} == {root / MEMBER}
    sizes = [size for _, size in grown]
    assert sizes == [0, *range(50, len(dump), 50), len(dump)]
    for extracted, data in [*others.items(), (MEMBER, dump)]:
        assert (root / extracted).read_bytes() == data
    assert (cluster.marker(load.swap.new), items(cluster, load.swap.new)) == ("new", ITEMS)
    assert cluster.marker(name) == "old"


def test_the_loading_sink_stops_the_extraction_with_the_loaders_failure(
    cluster: Cluster, name: str, start: Callable[[], Load], tmp_path: Path
) -> None:
    load = start()
    root = tmp_path / "staging"
    broken = (DUMP + DUPLICATE).encode()  # psql stops here, with the rest still to come
    before = b"before the dump\n"
    failed = pytest.raises(ComponentFailedError, match="cannot be loaded")
    with failed as raised, LoadingSink(SafeExtractor(root), root, MEMBER, load.loader) as sink:
        extract_file(sink, "before.txt", before, 100)
        sink.begin_file(member(MEMBER))
        sink.write(broken)
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:  # the extraction goes on until the loader has failed
            sink.write(b"-- the rest of a long dump\n")
            time.sleep(0.01)
    assert load.loader.failure is raised.value
    assert "duplicate key" in str(raised.value)
    assert not root.exists()  # the extraction was aborted
    with pytest.raises(ComponentFailedError) as again:
        load.loader.wait()
    assert again.value is raised.value
    assert cluster.names(name) == {name}
    assert cluster.marker(name) == "old"


def big_dump(path: Path, *, before: str = "", terminated: bool = True) -> int:
    """A dump that takes psql a while: ``BIG_ROWS`` rows of COPY data. Returns its size."""
    rows = "".join(f"{i}\titem {i} ✓\n" for i in range(1, BIG_ROWS + 1))
    text = (
        before
        + BIG_HEADER
        + rows
        + ("\\.\nINSERT INTO public.marker VALUES ('new');\n" if terminated else "")
    )
    data = text.encode()
    path.write_bytes(data)
    return len(data)


@pytest.mark.parametrize("blocked", [False, True], ids=["psql-waiting-for-more", "send-blocked-on-psql"])
def test_stop_kills_a_load_in_the_middle_and_drops_the_new_database(
    cluster: Cluster, name: str, start: Callable[[], Load], tmp_path: Path, blocked: bool
) -> None:
    load = start()
    path = tmp_path / "big.sql"
    already = loader_threads()
    if blocked:
        # psql sleeps in the first statement, reading nothing: the send blocks once the pipe is full.
        size = big_dump(path, before="SELECT pg_sleep(600);\n")
        load.loader.grew(path, size)
        load.loader.complete()
        running = "pg_sleep"
    else:
        # Everything written so far is sent, and psql waits in the COPY for the rows still to come.
        size = big_dump(path, terminated=False)
        load.loader.grew(path, size)
        running = "COPY public.big"
    (thread,) = loader_threads() - already
    until(
        lambda: any(s == "active" and running in q for s, q in sessions(cluster, load.swap.new)),
        f"psql to run {running!r} in the new database",
    )
    if blocked and platform.machine() in SENDFILE:
        until(lambda: in_sendfile(thread), "the loader to block in sendfile")
    children = psql_children(load.swap.new)
    assert len(children) == 1

    stopping = threading.Thread(target=load.loader.stop, name="test-stop", daemon=True)
    stopping.start()
    stopping.join(20)  # well before pg_sleep(600) would end
    if stopping.is_alive():  # end psql's session, so that the thread (and the test) can end
        terminate = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {}"
        cluster.execute(sql.SQL(terminate).format(sql.Literal(load.swap.new)))
        stopping.join(DEADLINE)
        pytest.fail("stop() did not end the load in 20 s")

    assert not thread.is_alive()
    assert psql_children(load.swap.new) == []
    assert not Path(f"/proc/{children[0]}").exists()  # killed and reaped
    assert sessions(cluster, load.swap.new) == []
    assert cluster.names(name) == {name}
    assert cluster.marker(name) == "old"
    assert load.loader.failure is None  # given up on purpose, not a failure


def test_stop_before_the_dump_appears_does_nothing_and_wait_needs_a_start(
    cluster: Cluster, name: str, start: Callable[[], Load]
) -> None:
    load = start()
    already = loader_threads()
    began = time.monotonic()
    load.loader.stop()
    assert time.monotonic() - began < 1
    assert not load.loader.started
    assert load.loader.failure is None
    assert loader_threads() == already
    assert cluster.names(name) == {name}
    with pytest.raises(RuntimeError, match="never extracted"):
        load.loader.wait()
    fresh = DumpLoader(load.swapper, load.swap)
    with pytest.raises(RuntimeError, match="never extracted"):
        fresh.wait()
    assert cluster.names(name) == {name}


def test_a_database_left_under_the_new_name_by_a_crash_is_replaced_by_the_load(
    cluster: Cluster, name: str, start: Callable[[], Load], tmp_path: Path
) -> None:
    load = start()
    cluster.create(load.swap.new, "stale")
    cluster.execute("CREATE TABLE stale_only (x int)", load.swap.new)
    writer = Writer(load.loader, tmp_path / "dump.sql", pieces(DUMP.encode(), 200), pause=0.01)
    writer.start()
    writer.join_checked()
    load.loader.wait()
    assert tables(cluster, load.swap.new) == {"marker", "items"}
    assert (cluster.marker(load.swap.new), items(cluster, load.swap.new)) == ("new", ITEMS)
    assert cluster.marker(name) == "old"
