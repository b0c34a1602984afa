"""The database swap against a real PostgreSQL cluster: load, apply, roll back and finish, from every
state a crash can leave, with sessions connected to the databases being renamed."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from sddc_backup.archive.errors import ComponentFailedError
from sddc_backup.domain.restore import DatabaseSwap
from sddc_backup.services.restore.database import DatabaseSwapper
from tests.services.conftest import Cluster

RESTORE_ID = "5d0c1b2a-9e8f-4a7b-8c6d-5e4f3a2b1c0d"
ITEMS = 250
DUMP = """-- a plain-SQL dump, as pg_dump writes one
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
CREATE TABLE public.marker (what text NOT NULL);
CREATE TABLE public.items (id integer PRIMARY KEY, name text NOT NULL);
COPY public.marker (what) FROM stdin;
new
\\.
INSERT INTO public.items SELECT g, 'item ' || g || ' ✓' FROM generate_series(1, 250) AS g;
"""


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    path = tmp_path / "sddc-postgres.bkp"
    path.write_text(DUMP)
    return path


def swapper(cluster: Cluster, database: str) -> DatabaseSwapper:
    return DatabaseSwapper(cluster.url(database), bindir=cluster.postgres.bindir)


def load(swaps: DatabaseSwapper, swap: DatabaseSwap, dump: Path) -> None:
    swaps.feed(swap, str(dump)).load_file(dump)


def items(cluster: Cluster, database: str) -> int:
    with psycopg.connect(cluster.url(database), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM items WHERE name LIKE '%✓'").fetchone()
    assert row is not None
    return int(row[0])


def test_the_plan_names_new_and_old_after_the_restore(cluster: Cluster, name: str) -> None:
    cluster.create(name, "old")
    assert swapper(cluster, name).plan(RESTORE_ID) == DatabaseSwap(
        database=name, new=f"{name}_restore_5d0c1b2a", old=f"{name}_old_5d0c1b2a", had_live=True
    )
    assert not swapper(cluster, name + "_absent").plan(RESTORE_ID).had_live
    long = "d" * 60
    planned = swapper(cluster, long).plan(RESTORE_ID)
    assert (planned.new, planned.old) == ("d" * 40 + "_restore_5d0c1b2a", "d" * 40 + "_old_5d0c1b2a")
    assert len(planned.new) <= 63


def test_a_dsn_without_a_database_name_is_refused() -> None:
    with pytest.raises(ComponentFailedError, match="the DSN names no database"):
        DatabaseSwapper("host=127.0.0.1 port=5432")


def test_load_apply_finish_replaces_the_database_and_keeps_the_old_until_finish(
    cluster: Cluster, name: str, dump: Path
) -> None:
    cluster.create(name, "old")
    swaps = swapper(cluster, name)
    swap = swaps.plan(RESTORE_ID)
    load(swaps, swap, dump)
    assert (cluster.marker(name), cluster.marker(swap.new)) == ("old", "new")
    assert items(cluster, swap.new) == ITEMS
    swaps.apply(swap)
    swaps.apply(swap)
    assert cluster.names(name) == {name, swap.old}
    assert (cluster.marker(name), cluster.marker(swap.old)) == ("new", "old")
    swaps.finish(swap)
    swaps.finish(swap)
    assert cluster.names(name) == {name}
    assert items(cluster, name) == ITEMS


def test_load_drops_what_a_crash_left_under_the_new_name(cluster: Cluster, name: str, dump: Path) -> None:
    cluster.create(name, "old")
    swaps = swapper(cluster, name)
    swap = swaps.plan(RESTORE_ID)
    cluster.create(swap.new, "stale")
    load(swaps, swap, dump)
    assert cluster.marker(swap.new) == "new"
    assert cluster.marker(name) == "old"


def test_a_dump_that_fails_to_load_leaves_no_new_database_and_the_live_one_untouched(
    cluster: Cluster, name: str, tmp_path: Path
) -> None:
    cluster.create(name, "old")
    broken = tmp_path / "broken.sql"
    broken.write_text(DUMP)
    with broken.open("a") as tail:
        tail.write("INSERT INTO public.items VALUES (1, 'a duplicate key');\n")
    swaps = swapper(cluster, name)
    swap = swaps.plan(RESTORE_ID)
    with pytest.raises(ComponentFailedError, match="cannot be loaded"):
        load(swaps, swap, broken)
    assert cluster.names(name) == {name}
    assert cluster.marker(name) == "old"
    swaps.roll_back(swap)
    assert cluster.names(name) == {name}


# Each state a crash can leave (docs/design/restore-protocol.md), built by hand with SQL.
def not_loaded(cluster: Cluster, swap: DatabaseSwap) -> None:
    pass


def created_not_loaded(cluster: Cluster, swap: DatabaseSwap) -> None:
    cluster.create(swap.new, None)


def loaded(cluster: Cluster, swap: DatabaseSwap) -> None:
    cluster.create(swap.new, "new")


def swapped(cluster: Cluster, swap: DatabaseSwap) -> None:
    cluster.create(swap.new, "new")
    if swap.had_live:
        cluster.rename(swap.database, swap.old)
    cluster.rename(swap.new, swap.database)


State = Callable[[Cluster, DatabaseSwap], None]
STATES: list[tuple[State, bool]] = [  # (state, whether apply may be called from it)
    (not_loaded, False),
    (created_not_loaded, False),
    (loaded, True),
    (swapped, True),
]


@pytest.mark.parametrize("had_live", [True, False], ids=["live", "no-live"])
@pytest.mark.parametrize(("state", "applies"), STATES, ids=[s.__name__ for s, _ in STATES])
def test_roll_back_from_every_state_gives_back_exactly_the_old_database(
    cluster: Cluster, name: str, state: State, applies: bool, had_live: bool
) -> None:
    if had_live:
        cluster.create(name, "old")
    swaps = swapper(cluster, name)
    swap = swaps.plan(RESTORE_ID)
    assert swap.had_live is had_live
    state(cluster, swap)
    swaps.roll_back(swap)
    swaps.roll_back(swap)
    if had_live:
        assert cluster.names(name) == {name}
        assert cluster.marker(name) == "old"
    else:
        assert cluster.names(name) == set()


@pytest.mark.parametrize("had_live", [True, False], ids=["live", "no-live"])
@pytest.mark.parametrize("state", [s for s, applies in STATES if applies], ids=lambda s: s.__name__)
def test_apply_then_finish_from_every_state_gives_exactly_the_new_database(
    cluster: Cluster, name: str, state: State, had_live: bool
) -> None:
    if had_live:
        cluster.create(name, "old")
    swaps = swapper(cluster, name)
    swap = swaps.plan(RESTORE_ID)
    state(cluster, swap)
    swaps.apply(swap)
    swaps.apply(swap)
    swaps.finish(swap)
    swaps.finish(swap)
    assert cluster.names(name) == {name}
    assert cluster.marker(name) == "new"


@pytest.mark.parametrize("state", [not_loaded, created_not_loaded, loaded], ids=lambda s: s.__name__)
def test_load_from_the_states_before_the_swap_gives_the_dumps_content(
    cluster: Cluster, name: str, dump: Path, state: State
) -> None:
    cluster.create(name, "old")
    swaps = swapper(cluster, name)
    swap = swaps.plan(RESTORE_ID)
    state(cluster, swap)
    load(swaps, swap, dump)
    swaps.apply(swap)
    swaps.finish(swap)
    assert cluster.names(name) == {name}
    assert (cluster.marker(name), items(cluster, name)) == ("new", ITEMS)


Session = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def hold(cluster: Cluster) -> Iterator[Callable[[str, int], list[Session]]]:
    """Opens sessions on a database: idle ones, and one in a transaction holding a row lock."""
    opened: list[Session] = []

    def open_sessions(database: str, count: int) -> list[Session]:
        sessions = [psycopg.connect(cluster.url(database), autocommit=True) for _ in range(count)]
        busy = psycopg.connect(cluster.url(database))
        busy.execute("SELECT * FROM marker FOR UPDATE")
        opened.extend([*sessions, busy])
        return [*sessions, busy]

    yield open_sessions
    for session in opened:
        session.close()


def assert_ended(sessions: list[Session]) -> None:
    for session in sessions:
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")


def test_sessions_on_the_databases_are_ended_so_that_the_renames_work(
    cluster: Cluster, name: str, dump: Path, hold: Callable[[str, int], list[Session]]
) -> None:
    cluster.create(name, "old")
    swaps = swapper(cluster, name)
    swap = swaps.plan(RESTORE_ID)
    load(swaps, swap, dump)
    on_live, on_new = hold(name, 3), hold(swap.new, 1)
    swaps.apply(swap)
    assert_ended(on_live + on_new)
    assert cluster.marker(name) == "new"

    on_restored, on_old = hold(name, 2), hold(swap.old, 1)
    swaps.roll_back(swap)
    assert_ended(on_restored + on_old)
    assert cluster.names(name) == {name}
    assert cluster.marker(name) == "old"


def test_finish_drops_the_old_database_with_sessions_on_it(
    cluster: Cluster, name: str, dump: Path, hold: Callable[[str, int], list[Session]]
) -> None:
    cluster.create(name, "old")
    swaps = swapper(cluster, name)
    swap = swaps.plan(RESTORE_ID)
    load(swaps, swap, dump)
    swaps.apply(swap)
    on_old = hold(swap.old, 1)
    swaps.finish(swap)
    assert_ended(on_old)
    assert cluster.names(name) == {name}


def test_a_pg_dump_of_another_database_restores_through_a_key_value_dsn(
    cluster: Cluster, name: str, tmp_path: Path
) -> None:
    source = f"{name}_source"
    cluster.create(source, "from pg_dump")
    cluster.execute("CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL)", source)
    insert = sql.SQL("INSERT INTO items SELECT g, 'item ' || g || ' ✓' FROM generate_series(1, {}) g")
    cluster.execute(insert.format(sql.Literal(ITEMS)), source)
    dumped = tmp_path / "pg_dump.sql"
    subprocess.run(
        [
            str(cluster.postgres.bindir / "pg_dump"),
            "--no-password",
            "-f",
            str(dumped),
            "-d",
            cluster.url(source),
        ],
        check=True,
        timeout=120,
    )
    cluster.create(name, "old")
    postgres = cluster.postgres
    swaps = DatabaseSwapper(
        f"host=127.0.0.1 port={postgres.port} user={postgres.user} dbname={name}", bindir=postgres.bindir
    )
    swap = swaps.plan(RESTORE_ID)
    load(swaps, swap, dumped)
    swaps.apply(swap)
    swaps.finish(swap)
    assert (cluster.marker(name), items(cluster, name)) == ("from pg_dump", ITEMS)
    assert cluster.names(name) == {name, source}
