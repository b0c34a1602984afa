"""The files and directories of ``SDDC_BACKUP_PATHS``, as ``files/<absolute path>`` members.

Each root is yielded itself (a directory, a file or a symbolic link), then, for a directory, its contents
depth first in byte order of their names, so that the same tree always gives the same archive. Nothing
is ever followed through a symbolic link: links are members of their own, with their target. Sockets,
FIFOs and devices inside a tree are skipped with a warning; as a root they are refused.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from sddc_backup.archive.entries import Entry, EntryType
from sddc_backup.archive.errors import ComponentFailedError
from sddc_backup.services.components._common import absolute_paths, component_failed, group_name, user_name

log = logging.getLogger(__name__)

MEMBER_PREFIX = "files"
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def member_name(path: Path) -> str:
    """``files/<absolute path without the leading '/'>``."""
    relative = PurePosixPath(path).relative_to("/").as_posix()
    return MEMBER_PREFIX if relative == "." else f"{MEMBER_PREFIX}/{relative}"


class PathsComponent:
    """Files, directories and symbolic links under absolute roots, with mode, owner and mtime."""

    def __init__(self, paths: Sequence[Path], name: str = "files") -> None:
        self._name = name
        self._roots = absolute_paths(name, paths)
        for path in self._roots:
            if ".." in path.parts:
                raise component_failed(name, str(path), "the path contains '..'")

    @property
    def name(self) -> str:
        return self._name

    @property
    def roots(self) -> tuple[Path, ...]:
        return self._roots

    def staged_paths(self, staging_root: Path) -> dict[Path, Path]:
        """Where an extraction into ``staging_root`` puts each live root (for a restore)."""
        return {root: staging_root / member_name(root) for root in self._roots}

    def entries(self) -> Iterator[Entry]:
        directories = {root for root in self._roots if _is_directory(root)}
        seen: set[Path] = set()
        for root in self._roots:
            if root in seen or any(parent in directories for parent in root.parents):
                log.info("%s is already backed up under another configured path", root)
                continue
            seen.add(root)
            yield from self._walk_root(root)

    # -- walking ------------------------------------------------------------------------------------

    def _walk_root(self, root: Path) -> Iterator[Entry]:
        st = self._lstat(root)
        entry = self._entry(root, st)
        if entry is None:
            raise component_failed(
                self._name, str(root), f"it is a {_kind(st.st_mode)}, which cannot be backed up"
            )
        yield entry
        if entry.type is not EntryType.DIR:
            return
        stack = [iter(self._children(root))]
        while stack:
            path = next(stack[-1], None)
            if path is None:
                stack.pop()
                continue
            st = self._lstat(path)
            entry = self._entry(path, st)
            if entry is None:
                log.warning("Skipping %s: a %s cannot be backed up", path, _kind(st.st_mode))
                continue
            yield entry
            if entry.type is EntryType.DIR:
                stack.append(iter(self._children(path)))

    def _children(self, directory: Path) -> list[Path]:
        try:
            with os.scandir(directory) as it:
                names = sorted((e.name for e in it), key=os.fsencode)
        except OSError as exc:
            raise self._os_error(directory, "cannot list the directory", exc) from exc
        return [directory / name for name in names]

    def _lstat(self, path: Path) -> os.stat_result:
        try:
            return path.lstat()
        except FileNotFoundError as exc:
            raise component_failed(
                self._name, str(path), "it does not exist (or vanished during the backup)"
            ) from exc
        except OSError as exc:
            raise self._os_error(path, "cannot read its status", exc) from exc

    def _entry(self, path: Path, st: os.stat_result) -> Entry | None:
        fmt = stat.S_IFMT(st.st_mode)
        if fmt not in (stat.S_IFDIR, stat.S_IFLNK, stat.S_IFREG):
            return None
        entry = Entry(
            name=member_name(path),
            type=EntryType.DIR,
            mode=stat.S_IMODE(st.st_mode),
            mtime=st.st_mtime_ns / 1e9,
            mtime_ns=st.st_mtime_ns,
            uid=st.st_uid,
            gid=st.st_gid,
            uname=user_name(st.st_uid),
            gname=group_name(st.st_gid),
        )
        if fmt == stat.S_IFLNK:
            try:
                target = os.readlink(path)  # noqa: PTH115 - Path.readlink() normalises the target
            except OSError as exc:
                raise self._os_error(path, "cannot read the symbolic link", exc) from exc
            return replace(entry, type=EntryType.SYMLINK, target=target)
        if fmt == stat.S_IFREG:
            return replace(entry, type=EntryType.FILE, size=st.st_size, open=lambda: self._open(path, st))
        return entry

    def _open(self, path: Path, listed: os.stat_result) -> BinaryIO:
        """The file as listed: not followed through a link, not replaced, not resized since."""
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except FileNotFoundError as exc:
            raise component_failed(self._name, str(path), "it vanished during the backup") from exc
        except OSError as exc:
            raise self._os_error(path, "cannot open the file", exc) from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (listed.st_dev, listed.st_ino):
                raise component_failed(self._name, str(path), "it was replaced during the backup")
            if st.st_size != listed.st_size:
                raise component_failed(
                    self._name,
                    str(path),
                    f"its size changed during the backup ({listed.st_size} bytes, now {st.st_size})",
                )
            os.set_blocking(fd, True)
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def _os_error(self, path: Path, what: str, exc: OSError) -> ComponentFailedError:
        return component_failed(self._name, str(path), f"{what}: {exc.strerror or exc}")


def _kind(mode: int) -> str:
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def _is_directory(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False
