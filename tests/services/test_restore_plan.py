"""Planning the swaps from a staging tree built by hand: the matching layout, and every kind of mismatch."""

from __future__ import annotations

from pathlib import Path

import pytest

from sddc_backup.services.appliance import ApplianceLayout
from sddc_backup.services.restore.plan import LayoutMismatchError, StagedFile, file_roots, plan_files

RESTORE_ID = "0b7e2c4d-1a2b-4c3d-8e9f-001122334455"
DSN = "postgresql://app@127.0.0.1:5432/appdb"


def put(staging: Path, member: str, directory: bool = False) -> Path:
    path = staging / member
    if directory:
        path.mkdir(parents=True, exist_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"content of " + member.encode())
    return path


def files_member(live: Path) -> str:
    return "files/" + str(live).lstrip("/")


@pytest.fixture
def appliance(tmp_path: Path) -> tuple[Path, Path]:
    """(live root, staging): the appliance's paths are under the first, the extracted backup in the second."""
    live, staging = tmp_path / "appliance", tmp_path / "staging"
    (live / "etc" / "app").mkdir(parents=True)
    (live / "etc" / "app" / "app.conf").write_text("live")
    (live / "var" / "lib" / "app").mkdir(parents=True)
    (live / "var" / "lib" / "app" / "inventory.db").write_bytes(b"live db")
    (live / "var" / "lib" / "app" / "inventory.db-wal").write_bytes(b"live wal")
    staging.mkdir()
    return live, staging


def mismatch(layout: ApplianceLayout, staging: Path) -> str:
    with pytest.raises(LayoutMismatchError) as caught:
        plan_files(layout, staging, RESTORE_ID)
    assert caught.value.error_code == "RESTORE_LAYOUT_MISMATCH"
    assert caught.value.http_status == 400
    assert caught.value.message.startswith("The backup does not match this appliance: ")
    return caught.value.message


def test_a_matching_backup_gives_the_roots_then_each_database_after_its_side_files(
    appliance: tuple[Path, Path],
) -> None:
    live, staging = appliance
    etc_app, new_dir, db, other_db = (
        live / "etc" / "app",
        live / "srv" / "new",  # not on this appliance yet: had_live is false
        live / "var" / "lib" / "app" / "inventory.db",
        live / "srv" / "inventory.db",  # the same file name, at another position
    )
    put(staging, files_member(etc_app) + "/app.conf")
    put(staging, files_member(new_dir), directory=True)
    put(staging, "database/sqlite/0-inventory.db")
    put(staging, "database/sqlite/1-inventory.db")
    put(staging, "database/sddc-postgres.bkp")
    layout = ApplianceLayout(paths=[etc_app, new_dir], sqlite_paths=[db, other_db], postgres_dsn=DSN)

    plan = plan_files(layout, staging, RESTORE_ID)

    def row(item: StagedFile) -> tuple[str, str | None, str, bool, Path | None, str]:
        s = item.swap
        return (s.target, s.staged, s.old, s.had_live, item.extracted, item.kind)

    def names(
        target: Path, staged: bool, had_live: bool, extracted: Path | None, kind: str
    ) -> tuple[str, str | None, str, bool, Path | None, str]:
        hidden = target.parent / f".{target.name}.sddc-restore-"
        new = f"{hidden}new-0b7e2c4d" if staged else None
        return (str(target), new, f"{hidden}old-0b7e2c4d", had_live, extracted, kind)

    side = [Path(f"{db}{suffix}") for suffix in ("-wal", "-shm", "-journal")]
    other_side = [Path(f"{other_db}{suffix}") for suffix in ("-wal", "-shm", "-journal")]
    assert [row(i) for i in plan] == [
        names(etc_app, True, True, staging / files_member(etc_app), "path"),
        names(new_dir, True, False, staging / files_member(new_dir), "path"),
        names(side[0], False, True, None, "sqlite"),
        names(side[1], False, False, None, "sqlite"),
        names(side[2], False, False, None, "sqlite"),
        names(db, True, True, staging / "database/sqlite/0-inventory.db", "sqlite"),
        *(names(p, False, False, None, "sqlite") for p in other_side),
        names(other_db, True, False, staging / "database/sqlite/1-inventory.db", "sqlite"),
    ]


def test_nothing_configured_and_an_empty_backup_plan_nothing(tmp_path: Path) -> None:
    assert plan_files(ApplianceLayout(), tmp_path, RESTORE_ID) == []


def test_file_roots_drop_the_roots_inside_another_and_keep_the_order() -> None:
    layout = ApplianceLayout(
        paths=[
            Path("/srv/app/conf"),
            Path("/etc/app"),
            Path("/srv/app"),
            Path("/srv/application"),
            Path("/x"),
        ]
    )
    assert file_roots(layout) == [Path("/etc/app"), Path("/srv/app"), Path("/srv/application"), Path("/x")]
    deep = ApplianceLayout(paths=[Path("/a/b/c/d"), Path("/a")])
    assert file_roots(deep) == [Path("/a")]


def test_a_nested_root_comes_with_its_parent(appliance: tuple[Path, Path]) -> None:
    live, staging = appliance
    outer, inner = live / "etc" / "app", live / "etc" / "app" / "conf.d"
    put(staging, files_member(inner) + "/10-default.conf")
    plan = plan_files(ApplianceLayout(paths=[inner, outer]), staging, RESTORE_ID)
    assert [(i.swap.target, i.extracted) for i in plan] == [(str(outer), staging / files_member(outer))]


def test_a_root_missing_from_the_backup_is_named(appliance: tuple[Path, Path]) -> None:
    live, staging = appliance
    present, missing = live / "etc" / "app", live / "opt" / "tool"
    put(staging, files_member(present) + "/app.conf")
    message = mismatch(ApplianceLayout(paths=[present, missing]), staging)
    assert f"the backup has no copy of {missing}" in message
    assert str(present) not in message


def test_a_root_that_this_appliance_does_not_protect_is_named(appliance: tuple[Path, Path]) -> None:
    live, staging = appliance
    root = live / "etc" / "app"
    put(staging, files_member(root) + "/app.conf")
    put(staging, files_member(live / "etc" / "passwd"))  # a file beside a directory above the root
    put(staging, files_member(live / "opt" / "tool") + "/bin", directory=True)
    message = mismatch(ApplianceLayout(paths=[root]), staging)
    assert f"the backup holds {live / 'etc' / 'passwd'}, which this appliance does not protect" in message
    assert f"the backup holds {live / 'opt'}, which this appliance does not protect" in message
    assert "has no copy" not in message


def test_a_file_where_a_directory_above_a_root_belongs_is_named(appliance: tuple[Path, Path]) -> None:
    live, staging = appliance
    root = live / "etc" / "app"
    put(staging, files_member(live / "etc"))  # "etc" is a file in the backup
    message = mismatch(ApplianceLayout(paths=[root]), staging)
    assert f"the backup has no copy of {root}" in message
    assert f"the backup holds {live / 'etc'}, which this appliance does not protect" in message


def test_content_inside_a_root_is_the_roots_own(appliance: tuple[Path, Path]) -> None:
    live, staging = appliance
    root = live / "etc" / "app"
    put(staging, files_member(root) + "/deep/er/file")
    put(staging, files_member(root) + "/empty", directory=True)
    assert len(plan_files(ApplianceLayout(paths=[root]), staging, RESTORE_ID)) == 1


def test_a_sqlite_database_missing_or_at_another_position_is_named(appliance: tuple[Path, Path]) -> None:
    live, staging = appliance
    first, second = live / "var" / "lib" / "app" / "inventory.db", live / "srv" / "audit.db"
    put(staging, "database/sqlite/0-inventory.db")
    put(staging, "database/sqlite/0-audit.db")  # taken when audit.db was first in the setting
    put(staging, "database/sqlite/7-stale.db")
    message = mismatch(ApplianceLayout(sqlite_paths=[first, second]), staging)
    assert f"the backup has no copy of the SQLite database {second} (at position 1)" in message
    assert "the backup holds the SQLite database 0-audit.db, which this appliance does not protect" in message
    assert "the backup holds the SQLite database 7-stale.db, which this appliance does not protect" in message
    assert str(first) not in message


def test_a_sqlite_copy_that_is_not_a_file_is_missing(appliance: tuple[Path, Path]) -> None:
    live, staging = appliance
    db = live / "var" / "lib" / "app" / "inventory.db"
    put(staging, "database/sqlite/0-inventory.db", directory=True)
    message = mismatch(ApplianceLayout(sqlite_paths=[db]), staging)
    assert f"no copy of the SQLite database {db} (at position 0)" in message


def test_a_sqlite_database_in_the_backup_without_any_configured_is_named(
    appliance: tuple[Path, Path],
) -> None:
    _, staging = appliance
    put(staging, "database/sqlite/0-inventory.db")
    message = mismatch(ApplianceLayout(), staging)
    assert "holds the SQLite database 0-inventory.db, which this appliance does not protect" in message


def test_a_dump_without_a_dsn_and_a_dsn_without_a_dump_are_named(appliance: tuple[Path, Path]) -> None:
    _, staging = appliance
    assert "has no PostgreSQL dump, and this appliance protects a database" in mismatch(
        ApplianceLayout(postgres_dsn=DSN), staging
    )
    put(staging, "database/sddc-postgres.bkp")
    assert "holds a PostgreSQL dump, and this appliance protects no database" in mismatch(
        ApplianceLayout(), staging
    )
    assert plan_files(ApplianceLayout(postgres_dsn=DSN), staging, RESTORE_ID) == []


def test_every_difference_is_listed_in_one_error(appliance: tuple[Path, Path]) -> None:
    live, staging = appliance
    put(staging, files_member(live / "extra"))
    put(staging, "database/sqlite/3-x.db")
    put(staging, "database/sddc-postgres.bkp")
    layout = ApplianceLayout(paths=[live / "etc" / "app"], sqlite_paths=[live / "srv" / "a.db"])
    message = mismatch(layout, staging)
    assert message.count("; ") == 4, message
    for part in (
        f"has no copy of {live / 'etc' / 'app'}",
        f"holds {live / 'extra'}",
        f"no copy of the SQLite database {live / 'srv' / 'a.db'} (at position 0)",
        "holds the SQLite database 3-x.db",
        "holds a PostgreSQL dump",
    ):
        assert part in message
    assert message.endswith(".")
