"""Swaps by rename on a real filesystem: every state a crash can leave, copies across filesystems, removal.

Each state of the tables in docs/design/restore-protocol.md is built by hand on disk, then rolled back,
or applied and finished; the result must be exactly the old (or the new) content, with no hidden name
left beside it. A hypothesis test kills the process at random points of place/apply/finish/roll_back
(every later change to the filesystem fails, as after a real crash) and runs the recovery calls again.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import stat
import tempfile
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sddc_backup.domain.restore import PathSwap
from sddc_backup.services.restore import files
from tests.support.mounts import tmpfs

RESTORE_ID = "3f1c9a7e-5b2d-4c8e-9f10-2a6b7c8d9e0f"
MTIME_NS = 1_764_230_400_123_456_789
NEIGHBOUR = "neighbour.conf"
KINDS = ("dir", "file", "link")
UID, GID = 1234, 2345
NOBODY = 65534

Snapshot = dict[str, tuple[Any, ...]]


# -- content ------------------------------------------------------------------------------------------


def _times(path: Path, offset: int) -> None:
    os.utime(path, ns=(MTIME_NS - 7, MTIME_NS + offset), follow_symlinks=False)


def build(path: Path, kind: str, variant: str, *, partial: bool = False) -> None:
    """Content that depends only on the arguments: the same call gives the same snapshot anywhere.

    A directory holds files of several modes and owners, a set-uid file, a relative link, a read-only
    subdirectory and a name found only in this variant; ``partial`` is what a copy cut short leaves.
    """
    tag = variant.encode()
    if kind == "dir":
        path.mkdir()
        (path / "a.txt").write_bytes(tag + b" alpha\n")
        (path / "a.txt").chmod(0o640)
        _times(path / "a.txt", 1)
        if not partial:
            sub = path / "sub"
            sub.mkdir()
            (sub / "data.bin").write_bytes(bytes(range(256)) * 64 + tag)
            os.chown(sub / "data.bin", UID, GID)
            (sub / "data.bin").chmod(0o604)
            _times(sub / "data.bin", 2)
            _times(sub, 3)
            (path / "tool").write_bytes(b"#!/bin/sh\n")
            os.chown(path / "tool", UID, GID)
            (path / "tool").chmod(0o4755)
            _times(path / "tool", 4)
            (path / "rel").symlink_to("a.txt")
            _times(path / "rel", 5)
            (path / f"only-in-{variant}").touch()
            _times(path / f"only-in-{variant}", 6)
            ro = path / "ro"
            ro.mkdir()
            (ro / "f").write_bytes(tag)
            _times(ro / "f", 7)
            ro.chmod(0o555)
            _times(ro, 8)
        path.chmod(0o750 if variant == "old" else 0o705)
        _times(path, 9)
    elif kind == "file":
        path.write_bytes(tag * (3 if partial else 5000))
        os.chown(path, UID if variant == "new" else 0, GID)
        path.chmod(0o600 if variant == "old" else 0o640)
        _times(path, 10)
    elif kind == "link":
        assert not partial, "a link is created whole"
        path.symlink_to(f"/nonexistent/{variant}-target")
        _times(path, 11)
    elif kind == "other":  # what the restored application wrote under the target name meanwhile
        path.write_bytes(b"written by the restored database")
        _times(path, 12)
    else:
        raise AssertionError(kind)


def snapshot(path: Path) -> Snapshot | None:
    """Every name under ``path`` with its type, mode, owner, mtime (ns) and content or link target."""
    if not os.path.lexists(path):
        return None
    found: Snapshot = {}

    def visit(p: Path, rel: str) -> None:
        st_ = os.lstat(p)
        if stat.S_ISLNK(st_.st_mode):
            body: object = str(p.readlink())
        elif stat.S_ISREG(st_.st_mode):
            body = p.read_bytes()
        else:
            body = None
        found[rel] = (stat.S_IFMT(st_.st_mode), stat.S_IMODE(st_.st_mode), st_.st_uid, st_.st_gid)
        found[rel] += (st_.st_mtime_ns, body)
        if stat.S_ISDIR(st_.st_mode):
            for child in sorted(c.name for c in p.iterdir()):
                visit(p / child, f"{rel}/{child}")

    visit(path, ".")
    return found


@functools.cache
def reference(kind: str, variant: str, partial: bool = False) -> Snapshot:
    with tempfile.TemporaryDirectory() as scratch:
        build(Path(scratch) / "x", kind, variant, partial=partial)
        found = snapshot(Path(scratch) / "x")
        files.remove(Path(scratch) / "x")
    assert found is not None
    return found


def names(directory: Path) -> set[str]:
    return {child.name for child in directory.iterdir()}


@pytest.fixture
def live(tmp_path: Path) -> Path:
    """The directory that holds the target, with a neighbour that no operation may touch."""
    directory = tmp_path / "live"
    directory.mkdir()
    (directory / NEIGHBOUR).write_bytes(b"keep me")
    return directory


@pytest.fixture(scope="module")
def other_fs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tmpfs: a rename from the test's temporary directory into it fails with EXDEV."""
    with tmpfs(tmp_path_factory.mktemp("other-fs") / "mnt", "32m") as path:
        yield path


# -- plan_path, sibling ---------------------------------------------------------------------------------


def test_the_hidden_names_are_siblings_of_the_target_named_after_the_restore(live: Path) -> None:
    swap = files.plan_path(live / "app.conf", True, RESTORE_ID)
    assert swap == PathSwap(
        target=str(live / "app.conf"),
        staged=str(live / ".app.conf.sddc-restore-new-3f1c9a7e"),
        old=str(live / ".app.conf.sddc-restore-old-3f1c9a7e"),
        had_live=False,
    )
    aside = files.plan_path(live / "app.db-wal", False, RESTORE_ID)
    assert aside.staged is None
    assert aside.old == str(live / ".app.db-wal.sddc-restore-old-3f1c9a7e")


@pytest.mark.parametrize("kind", KINDS)
def test_had_live_is_whether_the_name_exists_even_as_a_dangling_link(live: Path, kind: str) -> None:
    build(live / "app", kind, "old")
    assert files.plan_path(live / "app", True, RESTORE_ID).had_live
    assert not files.plan_path(live / "absent", True, RESTORE_ID).had_live


# -- every state a crash can leave ----------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """Names on disk (role -> content) after a crash, and what may be called from there."""

    label: str
    had_live: bool
    staged: bool
    layout: dict[str, str] = field(default_factory=dict)
    rolls_back: bool = True
    applies: bool = True


# The tables of docs/design/restore-protocol.md, plus the half-done removals and copies.
STATES = (
    State("not staged yet", True, True, {"target": "old"}, applies=False),
    State("half copied to staged", True, True, {"target": "old", "staged": "partial-new"}, applies=False),
    State("staged", True, True, {"target": "old", "staged": "new"}),
    State("between the renames", True, True, {"old": "old", "staged": "new"}),
    State("swapped", True, True, {"target": "new", "old": "old"}),
    State("roll-back removed the new content", True, True, {"old": "old"}, applies=False),
    State("roll-back half removed it", True, True, {"target": "partial-new", "old": "old"}, applies=False),
    State(
        "finish half removed the old", True, True, {"target": "new", "old": "partial-old"}, rolls_back=False
    ),
    State("no live: not staged yet", False, True, {}, applies=False),
    State("no live: half copied to staged", False, True, {"staged": "partial-new"}, applies=False),
    State("no live: staged", False, True, {"staged": "new"}),
    State("no live: swapped", False, True, {"target": "new"}),
    State("no live: roll-back half removed it", False, True, {"target": "partial-new"}, applies=False),
    State("aside: before", True, False, {"target": "old"}),
    State("aside: moved aside", True, False, {"old": "old"}),
    State("aside: moved aside, then recreated", True, False, {"old": "old", "target": "other"}),
    State("aside, no live: nothing there", False, False, {}),
    State(
        "aside, no live: created meanwhile",
        False,
        False,
        {"target": "other"},
    ),
)


def cases(want: str) -> list[Any]:
    params = []
    for state in STATES:
        if not getattr(state, want):
            continue
        partial = any(v.startswith("partial") for v in state.layout.values())
        pairs = [(o, n) for o in KINDS for n in KINDS] if state.staged else [(o, "-") for o in KINDS]
        if not state.had_live:
            pairs = [("-", n) for n in KINDS] if state.staged else [("-", "-")]
        for old_kind, new_kind in pairs:
            if partial and "link" in (old_kind, new_kind):
                continue
            ident = f"{state.label}-{old_kind}-to-{new_kind}"
            params.append(pytest.param(state, old_kind, new_kind, id=ident))
    return params


def make_state(live: Path, state: State, old_kind: str, new_kind: str) -> PathSwap:
    target = live / "app"
    if state.had_live:
        build(target, old_kind, "old")
    swap = files.plan_path(target, state.staged, RESTORE_ID)
    assert swap.had_live is state.had_live
    files.remove(target)
    where = {"target": target, "staged": Path(str(swap.staged)), "old": Path(swap.old)}
    for role, content in state.layout.items():
        variant = content.removeprefix("partial-")
        kind = "other" if content == "other" else (old_kind if variant == "old" else new_kind)
        build(where[role], kind, variant, partial=content.startswith("partial-"))
    return swap


@pytest.mark.parametrize(("state", "old_kind", "new_kind"), cases("rolls_back"))
def test_roll_back_from_every_state_gives_exactly_the_old_content(
    live: Path, state: State, old_kind: str, new_kind: str
) -> None:
    swap = make_state(live, state, old_kind, new_kind)
    files.roll_back(swap)
    files.roll_back(swap)  # a second run (after a crash in the first) changes nothing
    target = live / "app"
    if state.had_live:
        assert snapshot(target) == reference(old_kind, "old")
        assert names(live) == {NEIGHBOUR, "app"}
    else:
        assert names(live) == {NEIGHBOUR}
    assert (live / NEIGHBOUR).read_bytes() == b"keep me"


@pytest.mark.parametrize(("state", "old_kind", "new_kind"), cases("applies"))
def test_apply_then_finish_from_every_state_gives_exactly_the_new_content(
    live: Path, state: State, old_kind: str, new_kind: str
) -> None:
    swap = make_state(live, state, old_kind, new_kind)
    files.apply(swap)
    files.apply(swap)
    files.finish(swap)
    files.finish(swap)
    target = live / "app"
    if state.staged:
        expected: Snapshot | None = reference(new_kind, "new")
    elif state.layout.get("target") == "other":
        expected = reference("other", "new")  # the restored database's own file stays with it
    else:
        expected = None
    assert snapshot(target) == expected
    assert names(live) == {NEIGHBOUR} | ({"app"} if expected is not None else set())


@pytest.mark.parametrize("kind", KINDS)
def test_a_full_swap_keeps_the_old_content_under_old_until_finish(live: Path, kind: str) -> None:
    target = live / "app"
    build(target, kind, "old")
    swap = files.plan_path(target, True, RESTORE_ID)
    build(live / "extracted", kind, "new")
    files.place_staged(live / "extracted", swap)
    files.apply(swap)
    assert snapshot(target) == reference(kind, "new")
    assert snapshot(Path(swap.old)) == reference(kind, "old")
    assert names(live) == {NEIGHBOUR, "app", Path(swap.old).name}
    files.finish(swap)
    assert names(live) == {NEIGHBOUR, "app"}


# -- crashes at random points, then the recovery calls, themselves crashing --------------------------


class Crash(Exception):
    """The process died: this and every later change to the filesystem fails."""


class CrashPoints:
    """Counts the changes to the filesystem; the ``budget``-th one (from 0) is where the process dies."""

    def __init__(self, budget: int | None) -> None:
        self.budget = budget
        self.dead = False

    def here(self) -> bool:
        """Whether the process dies at this change (raise after any partial work)."""
        if self.dead:
            raise Crash
        if self.budget is None:
            return False
        if self.budget == 0:
            self.dead = True
            return True
        self.budget -= 1
        return False


@contextmanager
def crash_at(points: CrashPoints) -> Iterator[None]:
    real_rmtree, real_copy, real_unlink = shutil.rmtree, shutil.copyfileobj, Path.unlink

    def step(real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if points.here():
                raise Crash
            return real(*args, **kwargs)

        return wrapper

    def rmtree(path: Any, *args: Any, **kwargs: Any) -> None:
        if points.here():  # part of the tree is gone: the first file found, deepest first
            for directory, _, leaves in os.walk(path, topdown=False):
                if leaves:
                    real_unlink(Path(directory) / leaves[0])
                    break
            raise Crash
        real_rmtree(path, *args, **kwargs)

    def copyfileobj(source: Any, destination: Any, length: int = 0) -> None:
        if points.here():  # the file is cut short
            destination.write(source.read(100))
            raise Crash
        real_copy(source, destination, length)

    with (
        patch.object(Path, "rename", step(Path.rename)),
        patch.object(Path, "unlink", step(Path.unlink)),
        patch.object(Path, "mkdir", step(Path.mkdir)),
        patch.object(Path, "symlink_to", step(Path.symlink_to)),
        patch.object(Path, "chmod", step(Path.chmod)),
        patch.object(shutil, "rmtree", rmtree),
        patch.object(shutil, "copyfileobj", copyfileobj),
    ):
        yield


def attempt(call: Callable[[PathSwap], None], swap: PathSwap, budget: int | None) -> bool:
    """Run ``call``, killed at the ``budget``-th change; whether it returned."""
    with crash_at(CrashPoints(budget)):
        try:
            call(swap)
        except Crash:
            return False
    return True


# Mostly small: apply has two changes, a copy across filesystems dozens.
CRASH_POINTS = st.one_of(st.integers(0, 3), st.integers(0, 40))
BUDGETS = st.one_of(st.none(), CRASH_POINTS)


@pytest.mark.parametrize("filesystem", ["same", "other"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    old_kind=st.sampled_from([*KINDS, None]),
    new_kind=st.sampled_from([*KINDS, None]),
    place=BUDGETS,
    applies=st.lists(BUDGETS, min_size=1, max_size=3),
    commit=st.booleans(),
    recoveries=st.lists(CRASH_POINTS, max_size=3),
)
def test_crashes_anywhere_then_recovery_reach_exactly_old_or_new(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    filesystem: str,
    old_kind: str | None,
    new_kind: str | None,
    place: int | None,
    applies: list[int | None],
    commit: bool,
    recoveries: list[int],
) -> None:
    assume(old_kind is not None or new_kind is not None)
    base = request.getfixturevalue("other_fs") if filesystem == "other" else tmp_path
    run = base / uuid.uuid4().hex
    live, staging = run / "live", tmp_path / uuid.uuid4().hex
    live.mkdir(parents=True)
    staging.mkdir()
    (live / NEIGHBOUR).write_bytes(b"keep me")
    target, extracted = live / "app", staging / "app"
    try:
        if old_kind is not None:
            build(target, old_kind, "old")
        swap = files.plan_path(target, new_kind is not None, RESTORE_ID)
        placed = True
        if new_kind is not None:
            build(extracted, new_kind, "new")
            placed = attempt(lambda s: files.place_staged(extracted, s), swap, place)
        applied = False
        if placed:  # the restore calls apply only after every path was staged
            for budget in applies:
                applied = attempt(files.apply, swap, budget) or applied
        if commit and applied:  # the commit comes after every apply returned
            for budget in recoveries:
                attempt(files.finish, swap, budget)
            files.finish(swap)
            expected = None if new_kind is None else reference(new_kind, "new")
        else:
            for budget in recoveries:
                attempt(files.roll_back, swap, budget)
            files.roll_back(swap)
            expected = None if old_kind is None else reference(old_kind, "old")
        assert snapshot(target) == expected
        assert names(live) == {NEIGHBOUR} | ({"app"} if expected is not None else set())
    finally:
        files.remove(run)
        files.remove(staging)


# -- place_staged and copy_tree -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_place_staged_on_one_filesystem_is_a_rename(live: Path, tmp_path: Path, kind: str) -> None:
    extracted = tmp_path / "staging" / "app"
    extracted.parent.mkdir()
    build(extracted, kind, "new")
    inode = os.lstat(extracted).st_ino
    swap = files.plan_path(live / "app", True, RESTORE_ID)
    build(Path(str(swap.staged)), "dir", "old", partial=True)  # left by a crash in an earlier try
    files.place_staged(extracted, swap)
    assert not os.path.lexists(extracted)
    assert os.lstat(str(swap.staged)).st_ino == inode
    assert snapshot(Path(str(swap.staged))) == reference(kind, "new")
    assert names(live) == {NEIGHBOUR, Path(str(swap.staged)).name}


@pytest.mark.parametrize("kind", KINDS)
def test_place_staged_across_filesystems_copies_modes_owners_times_and_links(
    other_fs: Path, tmp_path: Path, kind: str
) -> None:
    extracted = tmp_path / "extracted"
    build(extracted, kind, "new")
    live = other_fs / uuid.uuid4().hex
    live.mkdir()
    swap = files.plan_path(live / "app", True, RESTORE_ID)
    build(Path(str(swap.staged)), "file", "old")  # left by a crash in an earlier try
    with pytest.raises(OSError) as caught:
        extracted.rename(live / "probe")
    assert caught.value.errno == errno.EXDEV
    try:
        files.place_staged(extracted, swap)
        assert not os.path.lexists(extracted)
        assert snapshot(Path(str(swap.staged))) == reference(kind, "new")
        assert names(live) == {Path(str(swap.staged)).name}
    finally:
        files.remove(live)


def test_a_copy_that_fills_the_other_filesystem_leaves_nothing_staged_and_the_extracted_tree_whole(
    tmp_path: Path,
) -> None:
    extracted = tmp_path / "extracted"
    build(extracted, "dir", "new")
    (extracted / "big.bin").write_bytes(os.urandom(1 << 20))
    before = snapshot(extracted)
    with tmpfs(tmp_path / "small", "256k") as small:
        swap = files.plan_path(small / "app", True, RESTORE_ID)
        with pytest.raises(OSError) as caught:
            files.place_staged(extracted, swap)
        assert caught.value.errno == errno.ENOSPC
        assert names(small) == set()
    assert snapshot(extracted) == before


def test_copy_tree_copies_a_top_level_link_as_a_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    files.copy_tree(tmp_path / "link", tmp_path / "copy")
    assert (tmp_path / "copy").is_symlink()
    assert (tmp_path / "copy").readlink() == tmp_path / "real"


def test_copy_tree_never_writes_into_an_existing_destination(tmp_path: Path) -> None:
    build(tmp_path / "source", "file", "new")
    build(tmp_path / "there", "file", "old")
    with pytest.raises(FileExistsError):
        files.copy_tree(tmp_path / "source", tmp_path / "there")
    assert snapshot(tmp_path / "there") == reference("file", "old")


# -- remove ---------------------------------------------------------------------------------------------


def test_remove_takes_files_links_and_trees_and_ignores_a_missing_name(tmp_path: Path) -> None:
    files.remove(tmp_path / "missing")
    build(tmp_path / "file", "file", "old")
    build(tmp_path / "dangling", "link", "old")
    build(tmp_path / "tree", "dir", "new")  # with a read-only subdirectory
    (tmp_path / "tree").chmod(0o500)
    for name in ("file", "dangling", "tree"):
        files.remove(tmp_path / name)
        assert not os.path.lexists(tmp_path / name)


def test_remove_never_follows_a_link_nor_changes_what_it_points_at(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    build(outside, "dir", "old")
    outside.chmod(0o555)
    before = snapshot(outside)
    (tmp_path / "link-to-dir").symlink_to(outside)
    files.remove(tmp_path / "link-to-dir")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "inner-link").symlink_to(outside)
    (tree / "ro").mkdir(mode=0o500)
    tree.chmod(0o500)
    files.remove(tree)
    assert not os.path.lexists(tree) and not os.path.lexists(tmp_path / "link-to-dir")
    assert snapshot(outside) == before


def remove_as_nobody(path: Path) -> int:
    """``files.remove(path)`` in a child process that runs as ``nobody``; its exit status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            files.remove(path)
            os._exit(0)
        except BaseException:  # noqa: BLE001 - reported by the exit status
            traceback.print_exc()
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.fixture
def nobodys_dir() -> Iterator[Path]:
    """A directory that ``nobody`` may write (pytest's temporary directories are root's, mode 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="sddc-restore-remove-"))
    directory.chmod(0o755)
    os.chown(directory, NOBODY, NOBODY)
    yield directory
    shutil.rmtree(directory)


def read_only_tree(root: Path, top_mode: int) -> None:
    """``root`` (``top_mode``) / ro (0500) / {deeper (0000) / f, f}, all owned by ``nobody``."""
    (root / "ro" / "deeper").mkdir(parents=True)
    (root / "ro" / "f").write_bytes(b"x")
    (root / "ro" / "deeper" / "f").write_bytes(b"y")
    for directory, _, leaves in os.walk(root):
        os.chown(directory, NOBODY, NOBODY)
        for leaf in leaves:
            os.chown(Path(directory) / leaf, NOBODY, NOBODY)
    (root / "ro" / "deeper").chmod(0o000)
    (root / "ro").chmod(0o500)
    root.chmod(top_mode)


@pytest.mark.parametrize(
    "top_mode",
    [
        0o700,
        0o500,
        0o000,
    ],
    ids=oct,
)
def test_remove_as_an_ordinary_user_takes_read_only_directories(nobodys_dir: Path, top_mode: int) -> None:
    read_only_tree(nobodys_dir / "tree", top_mode)
    assert remove_as_nobody(nobodys_dir / "tree") == 0
    assert names(nobodys_dir) == set()
