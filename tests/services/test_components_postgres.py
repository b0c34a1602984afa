"""The PostgreSQL component against a real cluster: two passes over one snapshot, failures, restore."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from sddc_backup.archive.entries import Entry, EntryType
from sddc_backup.archive.errors import ComponentFailedError
from sddc_backup.services.components._pg_stream import SequencePins
from sddc_backup.services.components.postgres import MEMBER, PostgresComponent
from sddc_backup.services.components.postgres_restore import restore_into_new_database
from tests.support.postgres import PostgresCluster

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "s3cr3t-Pa55word"
ROWS = 20_000
GREETING = "Grüße aus Köln — 日本語テキスト 🚀"
BLOB = bytes(range(256)) * 64


def with_password(url: str, password: str = PASSWORD) -> str:
    user, _, rest = url.removeprefix("postgresql://").partition("@")
    return f"postgresql://{user}:{password}@{rest}"


@pytest.fixture(scope="module")
def sample_db(postgres: PostgresCluster) -> str:
    """A database with several tables, thousands of rows, non-ASCII text, bytea and a large object."""
    url = postgres.create_database(f"sample_{uuid.uuid4().hex[:10]}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, note text)")
        conn.execute(
            "INSERT INTO customers (name, note) SELECT 'customer ' || g, %s || ' #' || g "
            "FROM generate_series(1, %s) AS g",
            (GREETING, ROWS),
        )
        conn.execute("CREATE TABLE blobs (id int PRIMARY KEY, data bytea NOT NULL)")
        conn.execute("INSERT INTO blobs VALUES (1, %s), (2, %s)", (BLOB, b"\x00\xff\x00"))
        conn.execute("CREATE TABLE documents (id int PRIMARY KEY, doc jsonb, lo oid)")
        (oid,) = conn.execute(
            "SELECT lo_from_bytea(0, %s)", (b"large object \xde\xad\xbe\xef" * 1000,)
        ).fetchone()
        conn.execute("INSERT INTO documents VALUES (1, %s, %s)", ('{"städte": ["Zürich", "Malmö"]}', oid))
    return url


def read_all(stream_entry: Entry) -> bytes:
    assert stream_entry.open is not None
    stream = stream_entry.open()
    try:
        return stream.read()
    finally:
        stream.close()


def snapshot_sessions(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_export_snapshot()%' "
            "AND state = 'idle in transaction'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def wait_for(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def data_only_dump(postgres: PostgresCluster, url: str) -> list[str]:
    out = subprocess.run(
        [str(postgres.bindir / "pg_dump"), "--data-only", "--no-password", "-d", url],
        capture_output=True,
        check=True,
    ).stdout.decode()
    # \restrict lines carry a random key per run (pg_dump 15.14 and later).
    return [line for line in out.splitlines() if not line.startswith(("\\restrict ", "\\unrestrict "))]


@pytest.fixture
def entries(sample_db: str, postgres: PostgresCluster) -> Iterator[Iterator[Entry]]:
    it = PostgresComponent(with_password(sample_db), bindir=postgres.bindir).entries()
    yield it
    it.close()  # type: ignore[attr-defined]


def test_the_dump_is_one_file_whose_size_and_digest_are_the_bytes_streamed(
    entries: Iterator[Entry], sample_db: str
) -> None:
    entry = next(entries)
    assert (entry.name, entry.type, entry.mode) == (MEMBER, EntryType.FILE, 0o600)
    assert entry.mtime_ns is not None
    assert abs(entry.mtime_ns / 1e9 - time.time()) < 60
    data = read_all(entry)
    assert len(data) == entry.size > ROWS * 20
    assert hashlib.sha256(data).hexdigest() == entry.expected_sha256
    text = data.decode("utf-8")
    assert f"customer {ROWS}\t{GREETING} #{ROWS}" in text
    assert "lo_create" in text  # the large object is in the dump
    assert "Zürich" in text
    assert next(entries, None) is None


def test_commits_between_the_two_passes_do_not_reach_the_dump(
    entries: Iterator[Entry], sample_db: str
) -> None:
    entry = next(entries)  # pass 1 is done, the snapshot is held
    with psycopg.connect(sample_db, autocommit=True) as conn:
        conn.execute("INSERT INTO customers (name) VALUES ('written-between-passes')")  # nextval()
        conn.execute("SELECT setval('customers_id_seq', 1234567890)")  # a longer setval line
        conn.execute("UPDATE blobs SET data = 'changed' WHERE id = 2")
        conn.execute("CREATE TABLE created_between_passes (x int)")
    try:
        data = read_all(entry)
        assert hashlib.sha256(data).hexdigest() == entry.expected_sha256
        assert len(data) == entry.size
        assert b"written-between-passes" not in data
        assert b"created_between_passes" not in data
    finally:
        with psycopg.connect(sample_db, autocommit=True) as conn:
            conn.execute("DELETE FROM customers WHERE name = 'written-between-passes'")
            conn.execute("SELECT setval('customers_id_seq', (SELECT max(id) FROM customers))")
            conn.execute("UPDATE blobs SET data = '\\x00ff00' WHERE id = 2")
            conn.execute("DROP TABLE created_between_passes")


def test_a_busy_application_writing_throughout_the_backup_does_not_break_it(
    postgres: PostgresCluster,
) -> None:
    url = postgres.create_database(f"busy_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (id bigserial PRIMARY KEY, body text)")
        conn.execute("INSERT INTO events (body) SELECT repeat('e', 200) FROM generate_series(1, 20000)")
    stop = threading.Event()
    written = 0

    def application() -> None:
        nonlocal written
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("INSERT INTO events (body) VALUES ('during the backup')")
                written += 1

    writer = threading.Thread(target=application)
    writer.start()
    try:
        entries = PostgresComponent(url, bindir=postgres.bindir).entries()
        entry = next(entries)
        data = read_all(entry)
        assert next(entries, None) is None
    finally:
        stop.set()
        writer.join()
    assert written > 0
    assert hashlib.sha256(data).hexdigest() == entry.expected_sha256
    assert data.count(b"during the backup") < written  # what was written after the snapshot is not in it


def test_the_snapshot_session_is_held_until_pass_2_has_started(
    entries: Iterator[Entry], sample_db: str
) -> None:
    entry = next(entries)
    assert snapshot_sessions(sample_db) == 1
    assert entry.open is not None
    stream = entry.open()
    try:
        assert stream.read(1) == b"-"
        assert wait_for(lambda: snapshot_sessions(sample_db) == 0)
        rest = stream.read()
    finally:
        stream.close()
    assert 1 + len(rest) == entry.size


def test_the_password_is_on_no_command_line(entries: Iterator[Entry]) -> None:
    entry = next(entries)
    assert entry.open is not None
    stream = entry.open()
    try:
        stream.read(1)
        pid = stream.pid  # type: ignore[attr-defined]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"--snapshot=" in cmdline
        assert PASSWORD.encode() not in cmdline
        stream.read()
    finally:
        stream.close()


@pytest.mark.parametrize("problem", ["missing database", "nobody listening"])
def test_a_bad_dsn_fails_naming_the_database_without_the_password(
    problem: str, postgres: PostgresCluster
) -> None:
    if problem == "missing database":
        dsn = with_password(f"postgresql://{postgres.user}@127.0.0.1:{postgres.port}/no_such_db")
    else:
        dsn = f"postgresql://{postgres.user}:{PASSWORD}@127.0.0.1:1/no_such_db"
    component = PostgresComponent(dsn, bindir=postgres.bindir)
    with pytest.raises(ComponentFailedError) as caught:
        next(component.entries())
    error = caught.value
    assert "no_such_db" in error.message
    assert "'postgres'" in error.message
    everything = "".join(traceback.format_exception(error)) + repr(error.arguments) + repr(error.context)
    assert PASSWORD not in everything


def test_a_dsn_that_does_not_parse_is_refused_without_echoing_it() -> None:
    with pytest.raises(ComponentFailedError) as caught:
        PostgresComponent(f"postgresql://u:{PASSWORD}@[::1")
    assert "not a valid PostgreSQL connection string" in caught.value.message
    assert PASSWORD not in "".join(traceback.format_exception(caught.value))


def test_pass_1_fails_with_pg_dumps_message(postgres: PostgresCluster, sample_db: str) -> None:
    role = f"reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(sample_db, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
    dsn = f"postgresql://{role}:{PASSWORD}@127.0.0.1:{postgres.port}/{sample_db.rsplit('/', 1)[1]}"
    with pytest.raises(ComponentFailedError) as caught:
        next(PostgresComponent(dsn, bindir=postgres.bindir).entries())
    message = caught.value.message
    assert "pass 1" in message
    assert "permission denied" in message
    assert PASSWORD not in message


def test_pg_dump_killed_during_pass_2_fails_on_close(entries: Iterator[Entry]) -> None:
    entry = next(entries)
    assert entry.open is not None
    stream = entry.open()
    first = stream.read(4096)
    os.kill(stream.pid, signal.SIGKILL)  # type: ignore[attr-defined]
    rest = stream.read()
    assert len(first) + len(rest) < entry.size
    with pytest.raises(ComponentFailedError) as caught:
        stream.close()
    assert "pass 2" in caught.value.message
    assert "SIGKILL" in caught.value.message


def test_a_reader_that_gives_up_early_stops_pg_dump_without_an_error(entries: Iterator[Entry]) -> None:
    entry = next(entries)
    assert entry.open is not None
    stream = entry.open()
    stream.read(4096)
    pid = stream.pid  # type: ignore[attr-defined]
    stream.close()  # no error: the reader abandoned it
    assert not Path(f"/proc/{pid}").exists()


def test_reading_the_exact_size_then_closing_checks_the_exit_status(entries: Iterator[Entry]) -> None:
    entry = next(entries)
    assert entry.open is not None
    stream = entry.open()
    data = stream.read(entry.size)  # what tar does: exactly the size, then close
    stream.close()
    assert hashlib.sha256(data).hexdigest() == entry.expected_sha256


def test_open_after_the_iterator_moved_on_fails(sample_db: str, postgres: PostgresCluster) -> None:
    (entry,) = list(PostgresComponent(sample_db, bindir=postgres.bindir).entries())
    assert entry.open is not None
    with pytest.raises(ComponentFailedError, match="after entries"):
        entry.open()


def test_a_restored_dump_holds_the_same_data(
    entries: Iterator[Entry], sample_db: str, postgres: PostgresCluster, tmp_path: Path
) -> None:
    dump = tmp_path / "sddc-postgres.bkp"
    dump.write_bytes(read_all(next(entries)))
    admin = with_password(f"postgresql://{postgres.user}@127.0.0.1:{postgres.port}/postgres")
    name = f"restored_{uuid.uuid4().hex[:8]}"
    restored = restore_into_new_database(dump, admin, name, bindir=postgres.bindir)
    assert restored == with_password(f"postgresql://{postgres.user}@127.0.0.1:{postgres.port}/{name}")
    assert data_only_dump(postgres, restored) == data_only_dump(postgres, sample_db)
    with psycopg.connect(restored) as conn:
        row = conn.execute("SELECT lo_get(lo) FROM documents WHERE id = 1").fetchone()
    assert row is not None
    assert bytes(row[0]).startswith(b"large object \xde\xad\xbe\xef")


def database_exists(postgres: PostgresCluster, name: str) -> bool:
    with psycopg.connect(f"postgresql://{postgres.user}@127.0.0.1:{postgres.port}/postgres") as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def test_a_dump_that_fails_to_load_leaves_no_database(postgres: PostgresCluster, tmp_path: Path) -> None:
    dump = tmp_path / "broken.sql"
    dump.write_text("CREATE TABLE t (x int);\nINSERT INTO t VALUES ('not a number');\n")
    admin = f"postgresql://{postgres.user}:{PASSWORD}@127.0.0.1:{postgres.port}/postgres"
    name = f"broken_{uuid.uuid4().hex[:8]}"
    with pytest.raises(ComponentFailedError) as caught:
        restore_into_new_database(dump, admin, name, bindir=postgres.bindir)
    assert "invalid input syntax" in caught.value.message
    assert name in caught.value.message
    assert PASSWORD not in caught.value.message
    assert not database_exists(postgres, name)


def test_restoring_into_an_existing_database_fails_and_leaves_it(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    name = f"existing_{uuid.uuid4().hex[:8]}"
    url = postgres.create_database(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE keep_me (x int)")
    dump = tmp_path / "dump.sql"
    dump.write_text("CREATE TABLE t (x int);\n")
    admin = f"postgresql://{postgres.user}@127.0.0.1:{postgres.port}/postgres"
    with pytest.raises(ComponentFailedError, match="already exists"):
        restore_into_new_database(dump, admin, name, bindir=postgres.bindir)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('keep_me') IS NOT NULL").fetchone() == (True,)


PASS_1 = (
    b"--\n-- PostgreSQL database dump\n--\n\nCOPY public.t (x) FROM stdin;\n"
    b"SELECT pg_catalog.setval('not.a.sequence', 1, true);\n"  # data that looks like a setval line
    + b"SELECT pg_catalog.setval("
    + b"x" * 5000
    + b"\n"  # too long to be one
    + b"\\.\n\nSELECT pg_catalog.setval('public.a_id_seq', 5, true);\n\n"
    b"SELECT pg_catalog.setval('public.\"we''ird, seq\"', 1, false);\n-- done\n"
)
PASS_2 = PASS_1.replace(b"a_id_seq', 5, true", b"a_id_seq', 123456789, true").replace(
    b"seq\"', 1, false", b"seq\"', 77, true"
)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 26, 64, 4097, len(PASS_2)])
def test_pass_2_gets_the_sequence_values_of_pass_1_however_the_stream_is_cut(chunk: int) -> None:
    recorder = SequencePins()
    assert recorder.feed(PASS_1) + recorder.finish() == PASS_1
    pins = SequencePins(recorder.lines)
    out = b"".join(pins.feed(PASS_2[i : i + chunk]) for i in range(0, len(PASS_2), chunk)) + pins.finish()
    assert out == PASS_1
    assert pins.lines[1:] == [
        b"SELECT pg_catalog.setval('public.a_id_seq', 123456789, true);",
        b"SELECT pg_catalog.setval('public.\"we''ird, seq\"', 77, true);",
    ]


def test_a_setval_line_of_another_sequence_is_not_replaced() -> None:
    pins = SequencePins([b"SELECT pg_catalog.setval('public.a', 5, true);"])
    line = b"\nSELECT pg_catalog.setval('public.b', 9, true);\n"
    assert pins.feed(line) + pins.finish() == line


def test_backup_and_restore_of_a_database_load_no_database_driver(
    sample_db: str, postgres: PostgresCluster, tmp_path: Path
) -> None:
    # The server and the upload process keep what they import: they parse, dump and restore with
    # libpq and the client programs only.
    copy = f"copy_{uuid.uuid4().hex[:8]}"
    program = f"""
import pathlib, sys
import sddc_backup.app.server, sddc_backup.services.archive_upload
from sddc_backup.services.components import PostgresComponent, restore_into_new_database
from sddc_backup.services.restore.database import DatabaseSwapper
bindir, dump = pathlib.Path({str(postgres.bindir)!r}), pathlib.Path({str(tmp_path / "dump.sql")!r})
component = PostgresComponent({sample_db!r}, bindir=bindir)
for entry in component.entries():
    stream = entry.open()
    dump.write_bytes(stream.read())
    stream.close()
    assert dump.stat().st_size == entry.size > 0
restored = restore_into_new_database(dump, {sample_db!r}, {copy!r}, bindir)
swapper = DatabaseSwapper(restored, bindir)
swap = swapper.plan("0123456789abcdef")
assert swap.had_live and swap.database == {copy!r}
swapper.finish(swap)
print(sorted(m for m in sys.modules if m.startswith("psycopg")))
"""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, "-c", program], check=False, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    copy_url = sample_db.rsplit("/", 1)[0] + "/" + copy
    with psycopg.connect(copy_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM customers").fetchone()
    assert row is not None and row[0] == ROWS  # the dump went through psql into the new database
