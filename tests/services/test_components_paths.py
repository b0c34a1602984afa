"""The files component over real trees: order, metadata, links, special files, and files that change."""

from __future__ import annotations

import grp
import logging
import os
import pwd
import socket
from pathlib import Path

import pytest

from sddc_backup.archive.entries import Entry, EntryType
from sddc_backup.archive.errors import ComponentFailedError
from sddc_backup.services.components.paths import PathsComponent

MTIME_NS = 1_764_230_400_123_456_789


def member(path: Path) -> str:
    return "files/" + str(path).lstrip("/")


def content(entry: Entry) -> bytes:
    assert entry.open is not None
    with entry.open() as handle:
        return handle.read()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/ (0750): a.txt (0600), b/inner.txt, c/d/e/deep.txt, empty, link-abs, link-rel."""
    root = tmp_path / "root"
    (root / "b").mkdir(parents=True)
    (root / "c" / "d" / "e").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha\n")
    (root / "a.txt").chmod(0o600)
    (root / "b" / "inner.txt").write_bytes(b"inner")
    (root / "c" / "d" / "e" / "deep.txt").write_bytes(b"deep" * 10_000)
    (root / "empty").touch()
    (root / "link-rel").symlink_to("b/inner.txt")
    (root / "link-abs").symlink_to("/etc/hostname")
    os.utime(root / "a.txt", ns=(MTIME_NS, MTIME_NS))
    root.chmod(0o750)
    return root


def test_a_tree_is_walked_depth_first_in_name_order(tree: Path) -> None:
    names = [e.name for e in PathsComponent([tree]).entries()]
    relative = [
        "",
        "/a.txt",
        "/b",
        "/b/inner.txt",
        "/c",
        "/c/d",
        "/c/d/e",
        "/c/d/e/deep.txt",
        "/empty",
        "/link-abs",
        "/link-rel",
    ]
    assert names == [member(tree) + r for r in relative]
    assert names == [e.name for e in PathsComponent([tree]).entries()]  # deterministic


def test_entries_keep_type_mode_owner_time_size_and_link_targets(tree: Path) -> None:
    entries = {e.name: e for e in PathsComponent([tree]).entries()}
    root = entries[member(tree)]
    assert (root.type, root.mode) == (EntryType.DIR, 0o750)
    a = entries[member(tree / "a.txt")]
    assert (a.type, a.mode, a.size, a.mtime, a.mtime_ns) == (
        EntryType.FILE,
        0o600,
        6,
        MTIME_NS / 1e9,
        MTIME_NS,
    )
    st = (tree / "a.txt").stat()
    assert (a.uid, a.gid) == (st.st_uid, st.st_gid)
    assert a.uname == pwd.getpwuid(st.st_uid).pw_name
    assert a.gname == grp.getgrgid(st.st_gid).gr_name
    assert content(a) == b"alpha\n"
    assert content(entries[member(tree / "c/d/e/deep.txt")]) == b"deep" * 10_000
    empty = entries[member(tree / "empty")]
    assert (empty.size, content(empty)) == (0, b"")
    rel, absolute = entries[member(tree / "link-rel")], entries[member(tree / "link-abs")]
    assert (rel.type, rel.target, rel.open) == (EntryType.SYMLINK, "b/inner.txt", None)
    assert (absolute.type, absolute.target) == (EntryType.SYMLINK, "/etc/hostname")


def test_an_owner_without_a_name_gets_an_empty_name(tree: Path) -> None:
    unknown = 54_321
    assert all(p.pw_uid != unknown for p in pwd.getpwall())
    os.chown(tree / "empty", unknown, unknown)
    (entry,) = [e for e in PathsComponent([tree]).entries() if e.name.endswith("/empty")]
    assert (entry.uid, entry.gid, entry.uname, entry.gname) == (unknown, unknown, "", "")


def test_a_symlinked_directory_is_a_link_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("not in the backup")
    root = tmp_path / "root"
    root.mkdir()
    (root / "dir-link").symlink_to(outside)
    names = {e.name: e for e in PathsComponent([root]).entries()}
    assert list(names) == [member(root), member(root / "dir-link")]
    assert names[member(root / "dir-link")].target == str(outside)


def test_roots_may_be_files_and_links(tree: Path) -> None:
    entries = list(PathsComponent([tree / "a.txt", tree / "link-rel"]).entries())
    assert [(e.name, e.type) for e in entries] == [
        (member(tree / "a.txt"), EntryType.FILE),
        (member(tree / "link-rel"), EntryType.SYMLINK),
    ]


def test_a_root_inside_another_root_is_backed_up_once(tree: Path) -> None:
    names = [e.name for e in PathsComponent([tree / "b", tree, tree / "b/inner.txt", tree]).entries()]
    assert len(names) == len(set(names)) == 11


def test_a_missing_root_fails_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "not-there"
    with pytest.raises(ComponentFailedError) as caught:
        list(PathsComponent([missing]).entries())
    assert str(missing) in caught.value.message
    assert caught.value.context == {"component": "files", "subject": str(missing)}


def test_a_relative_root_is_refused() -> None:
    with pytest.raises(ComponentFailedError, match="not absolute"):
        PathsComponent([Path("etc/app")])


def test_a_file_deleted_after_its_directory_was_listed_fails_naming_it(tree: Path) -> None:
    entries = PathsComponent([tree]).entries()
    assert next(entries).name == member(tree)
    assert next(entries).name == member(tree / "a.txt")  # the root has been listed
    (tree / "empty").unlink()
    with pytest.raises(ComponentFailedError) as caught:
        list(entries)
    assert str(tree / "empty") in caught.value.message


def test_a_file_deleted_before_it_is_opened_fails_naming_it(tree: Path) -> None:
    entries = PathsComponent([tree]).entries()
    entry = next(e for e in entries if e.name == member(tree / "b/inner.txt"))
    (tree / "b" / "inner.txt").unlink()
    assert entry.open is not None
    with pytest.raises(ComponentFailedError) as caught:
        entry.open()
    assert str(tree / "b" / "inner.txt") in caught.value.message
    assert "vanished" in caught.value.message


def test_a_file_that_changed_size_or_was_replaced_before_it_is_opened_fails(tree: Path) -> None:
    entries = {e.name: e for e in PathsComponent([tree]).entries()}
    with (tree / "a.txt").open("ab") as handle:
        handle.write(b"more")
    replacement = tree / "new"
    replacement.write_bytes(b"inner")
    replacement.replace(tree / "b" / "inner.txt")
    grown, replaced = entries[member(tree / "a.txt")], entries[member(tree / "b/inner.txt")]
    assert grown.open is not None
    assert replaced.open is not None
    with pytest.raises(ComponentFailedError, match="size changed"):
        grown.open()
    with pytest.raises(ComponentFailedError, match="replaced"):
        replaced.open()


def test_sockets_and_fifos_in_a_tree_are_skipped_with_a_warning(
    tree: Path, caplog: pytest.LogCaptureFixture
) -> None:
    os.mkfifo(tree / "b" / "fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tree / "sock"))
        with caplog.at_level(logging.WARNING):
            names = [e.name for e in PathsComponent([tree]).entries()]
    assert member(tree / "b/fifo") not in names
    assert member(tree / "sock") not in names
    assert member(tree / "b/inner.txt") in names
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(tree / "b" / "fifo") in w and "FIFO" in w for w in warnings)
    assert any(str(tree / "sock") in w and "socket" in w for w in warnings)


def test_a_fifo_as_a_root_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ComponentFailedError, match="FIFO"):
        list(PathsComponent([fifo]).entries())


def test_a_name_that_is_not_utf8_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    raw = os.fsencode(root) + b"/caf\xe9"
    with open(raw, "wb") as handle:  # noqa: PTH123 - a bytes path
        handle.write(b"latin-1 name")
    (entry,) = list(PathsComponent([root]).entries())[1:]
    assert os.fsencode(entry.name) == b"files/" + raw.lstrip(b"/")
    assert content(entry) == b"latin-1 name"


def test_staged_paths_map_each_root_into_the_extraction(tree: Path, tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    component = PathsComponent([tree, Path("/etc/app.conf")])
    assert component.staged_paths(staging) == {
        tree: staging / "files" / str(tree).lstrip("/"),
        Path("/etc/app.conf"): staging / "files/etc/app.conf",
    }
