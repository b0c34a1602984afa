"""Files and directories swapped by rename: prepare beside the target, swap, roll back, clean up.

Every operation here is idempotent and decides what to do from which of the three names exist
(``target``, ``staged``, ``old``), so that the same call finishes or undoes a swap that a crash
interrupted at any point. Renames are followed by an fsync of the parent directory, so a swap that
returned is on disk.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from sddc_backup.domain.restore import PathSwap


def sibling(target: Path, role: str, restore_id: str) -> Path:
    """``<dir>/.<name>.sddc-restore-<role>-<id8>``: beside the target, on its filesystem, hidden."""
    return target.with_name(f".{target.name}.sddc-restore-{role}-{restore_id[:8]}")


def plan_path(target: Path, staged: bool, restore_id: str) -> PathSwap:
    return PathSwap(
        target=str(target),
        staged=str(sibling(target, "new", restore_id)) if staged else None,
        old=str(sibling(target, "old", restore_id)),
        had_live=os.path.lexists(target),
    )


def place_staged(extracted: Path, swap: PathSwap) -> None:
    """Move (same filesystem) or copy (another one) the extracted tree to ``swap.staged``."""
    assert swap.staged is not None
    staged = Path(swap.staged)
    remove(staged)
    try:
        extracted.rename(staged)
    except OSError as exc:
        if exc.errno != 18:  # EXDEV: the target lives on another filesystem
            raise
        try:
            copy_tree(extracted, staged)
        except BaseException:
            remove(staged)
            raise
        remove(extracted)
    _sync_dir(staged.parent)


def apply(swap: PathSwap) -> None:
    """Move the live target aside to ``old``, then the staged content into its place."""
    target, old = Path(swap.target), Path(swap.old)
    if swap.had_live and not os.path.lexists(old) and os.path.lexists(target):
        target.rename(old)
        _sync_dir(target.parent)
    if swap.staged is not None and os.path.lexists(swap.staged):
        Path(swap.staged).rename(target)
        _sync_dir(target.parent)


def roll_back(swap: PathSwap) -> None:
    """Put back what the swap replaced, and remove what the restore brought in."""
    target, old = Path(swap.target), Path(swap.old)
    if os.path.lexists(old):
        remove(target)  # the new content, moved in after the old was moved aside
        old.rename(target)
        _sync_dir(target.parent)
    elif not swap.had_live and (swap.staged is None or not os.path.lexists(swap.staged)):
        # Nothing was there before: what is there now is the staged content, moved in, or a file
        # the restored state created (a SQLite -wal that would be replayed into the old database).
        remove(target)
    if swap.staged is not None:
        remove(Path(swap.staged))


def finish(swap: PathSwap) -> None:
    """After the commit: drop the replaced content, and anything staged that is still around."""
    remove(Path(swap.old))
    if swap.staged is not None:
        remove(Path(swap.staged))


def remove(path: Path) -> None:
    """Remove a file, link or whole tree (never following links); nothing if it does not exist."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        _make_writable(path)
        shutil.rmtree(path)
    else:
        path.unlink()


def copy_tree(source: Path, destination: Path) -> None:
    """Copy a file, link or tree with modes, owners (as root) and nanosecond times; links as links."""
    st = os.lstat(source)
    if stat.S_ISLNK(st.st_mode):
        destination.symlink_to(source.readlink())
    elif stat.S_ISDIR(st.st_mode):
        destination.mkdir(mode=0o700)
        for child in sorted(source.iterdir()):
            copy_tree(child, destination / child.name)
    else:
        with source.open("rb") as src, open(destination, "xb") as dst:  # noqa: PTH123
            shutil.copyfileobj(src, dst, 1 << 20)
            os.fsync(dst.fileno())
    if os.geteuid() == 0:
        os.chown(destination, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        destination.chmod(stat.S_IMODE(st.st_mode))
    os.utime(destination, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _make_writable(tree: Path) -> None:
    """Directories restored read-only would stop their own removal (as a non-root owner)."""
    tree.chmod(0o700)  # first: the walk cannot enter a top directory it may not read
    for directory, subdirs, _ in os.walk(tree):
        for name in subdirs:
            path = Path(directory) / name
            if not path.is_symlink():
                path.chmod(0o700)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
