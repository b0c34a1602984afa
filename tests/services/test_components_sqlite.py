"""The SQLite component: consistent copies while the application writes, scratch clean-up, restore."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest

from sddc_backup.archive.entries import Entry, EntryType
from sddc_backup.archive.errors import ComponentFailedError
from sddc_backup.services.components.sqlite import SqliteComponent, restore_copy

ROWS = 1000


@pytest.fixture
def live_db(tmp_path: Path) -> Path:
    """A WAL database with ROWS committed rows."""
    path = tmp_path / "app" / "state.db"
    path.parent.mkdir()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO items (name) VALUES (?)", [(f"item {i} ✓",) for i in range(ROWS)])
    path.chmod(0o640)
    return path


def read(entry: Entry) -> bytes:
    assert entry.open is not None
    with entry.open() as handle:
        return handle.read()


def backup_bytes(database: Path, scratch: Path) -> bytes:
    entries = SqliteComponent([database], scratch).entries()  # kept alive while the entry is read
    data = read(next(entries))
    assert next(entries, None) is None
    return data


def rows(path: Path) -> list[tuple[int, str]]:
    with closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as conn:
        return conn.execute("SELECT id, name FROM items ORDER BY id").fetchall()


def test_the_copy_has_the_committed_rows_while_a_writer_holds_a_transaction(
    live_db: Path, tmp_path: Path
) -> None:
    with closing(sqlite3.connect(live_db, isolation_level=None)) as writer:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO items (name) VALUES ('uncommitted')")
        writer.execute("DELETE FROM items WHERE id <= 10")
        mtime_ns = live_db.stat().st_mtime_ns
        entries = SqliteComponent([live_db], tmp_path / "scratch").entries()
        entry = next(entries)
        data = read(entry)
        writer.execute("COMMIT")  # the writer was never blocked
        assert next(entries, None) is None
    assert (entry.name, entry.type, entry.mode) == ("database/sqlite/0-state.db", EntryType.FILE, 0o640)
    assert entry.size == len(data)
    assert entry.mtime_ns == mtime_ns
    assert entry.expected_sha256 == hashlib.sha256(data).hexdigest()
    copy = tmp_path / "copy.db"
    copy.write_bytes(data)
    copied = rows(copy)
    assert len(copied) == ROWS
    assert copied[0] == (1, "item 0 ✓")
    assert all(name != "uncommitted" for _, name in copied)
    assert len(rows(live_db)) == ROWS - 10 + 1  # the writer's commit went through


def test_member_names_carry_the_position_in_the_setting(live_db: Path, tmp_path: Path) -> None:
    other = tmp_path / "other" / "state.db"
    other.parent.mkdir()
    with closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        conn.commit()
    component = SqliteComponent([live_db, other], tmp_path / "scratch")
    names = [e.name for e in component.entries()]
    assert names == ["database/sqlite/0-state.db", "database/sqlite/1-state.db"]
    staging = tmp_path / "staging"
    assert component.staged_paths(staging) == {
        live_db: staging / "database/sqlite/0-state.db",
        other: staging / "database/sqlite/1-state.db",
    }


def test_the_scratch_copy_is_removed_when_its_file_is_closed(live_db: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    entries = SqliteComponent([live_db], scratch).entries()
    entry = next(entries)
    assert len(list(scratch.iterdir())) == 1
    assert entry.open is not None
    handle = entry.open()
    handle.read()
    handle.close()
    assert list(scratch.iterdir()) == []
    with pytest.raises(ComponentFailedError, match="copy is gone"):
        entry.open()
    assert next(entries, None) is None


def test_the_scratch_copy_is_removed_when_the_iterator_is_closed_unread(
    live_db: Path, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    entries = SqliteComponent([live_db], scratch).entries()
    next(entries)
    assert len(list(scratch.iterdir())) == 1
    entries.close()  # type: ignore[attr-defined]
    assert list(scratch.iterdir()) == []


def test_the_live_database_is_left_as_it_was(live_db: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in live_db.parent.iterdir())
    list(SqliteComponent([live_db], tmp_path / "scratch").entries())
    assert sorted(p.name for p in live_db.parent.iterdir()) == before
    assert len(rows(live_db)) == ROWS


def test_a_file_that_is_not_a_database_fails_naming_it(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not SQLite\n" * 100)
    scratch = tmp_path / "scratch"
    with pytest.raises(ComponentFailedError) as caught:
        list(SqliteComponent([junk], scratch).entries())
    assert str(junk) in caught.value.message
    assert "not a database" in caught.value.message
    assert list(scratch.iterdir()) == []


def test_a_missing_database_fails_naming_it_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(ComponentFailedError) as caught:
        list(SqliteComponent([missing], tmp_path / "scratch").entries())
    assert str(missing) in caught.value.message
    assert not missing.exists()


def test_restore_copy_stages_a_checked_copy_next_to_the_target(live_db: Path, tmp_path: Path) -> None:
    staged = tmp_path / "extracted.db"
    staged.write_bytes(backup_bytes(live_db, tmp_path / "scratch"))
    live_db.chmod(0o600)
    result = restore_copy(staged, live_db)
    assert result == live_db.with_name("state.db.restore-staging")
    assert result.read_bytes() == staged.read_bytes()
    assert stat.S_IMODE(result.stat().st_mode) == 0o600
    assert sorted(p.name for p in staged.parent.iterdir() if p.name.startswith("extracted")) == [
        "extracted.db"
    ]


def test_restore_copy_refuses_a_damaged_database(live_db: Path, tmp_path: Path) -> None:
    good = backup_bytes(live_db, tmp_path / "scratch")
    staged = tmp_path / "damaged.db"
    staged.write_bytes(good[:4096] + b"\xff" * (len(good) - 4096))
    with pytest.raises(ComponentFailedError) as caught:
        restore_copy(staged, live_db)
    assert str(staged) in caught.value.message
    assert not live_db.with_name("state.db.restore-staging").exists()
