"""Extraction of a verified-as-it-streams archive into a scratch directory, without ever writing
through a link or outside the directory.

Every path is walked from a directory descriptor with ``O_NOFOLLOW``; files are created with
``O_EXCL``. Directory modes and times are applied at the end, deepest first, so that a read-only
directory in the archive does not block its own contents. At the end every relative link is resolved
once more, so that no chain of links (``up -> .``, ``esc -> up/..``) leads out of the directory.

Use it as a context manager: on success it finishes the tree; on any failure it removes it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from sddc_backup.archive.errors import ExtractionFailedError, UnsafeMemberError
from sddc_backup.archive.reader import MemberInfo

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
OPEN_DIRECTORIES = 64
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class SafeExtractor:
    """A ``MemberSink`` that writes members under ``root`` (created here; it must not exist).

    ``allowed_link_roots`` are the absolute paths that an absolute symbolic link may point into (the
    protected paths of the backup); ``keep_owner`` restores uid and gid (meaningful as root only).
    """

    def __init__(self, root: Path, allowed_link_roots: tuple[str, ...] = (), *, keep_owner: bool = False):
        with _guard(str(root)):
            root.mkdir(mode=0o700)
        self.root = root
        self._root_fd: int | None = os.open(root, _DIR_FLAGS)
        self._allowed = tuple(PurePosixPath(p) for p in allowed_link_roots)
        self._keep_owner = keep_owner and os.geteuid() == 0
        self._dirs: list[MemberInfo] = []
        self._relative_links: list[str] = []
        self._file: int | None = None
        self._current: MemberInfo | None = None
        self._open_dirs: OrderedDict[str, int] = OrderedDict()  # see _directory_fd

    def __enter__(self) -> SafeExtractor:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self.abort()
            return
        try:
            self.close()
        except BaseException:
            self.abort()
            raise

    def close(self) -> None:
        """Finish a complete extraction: check the links, apply directory modes and times."""
        self._check_links()
        with _guard("a directory"):
            for member in sorted(self._dirs, key=lambda m: m.name.count("/"), reverse=True):
                parent, leaf = self._parent(member.name)
                os.chmod(leaf, member.mode, dir_fd=parent, follow_symlinks=False)
                ns = (member.mtime_ns, member.mtime_ns)
                os.utime(leaf, ns=ns, dir_fd=parent, follow_symlinks=False)
        self._release()

    def abort(self) -> None:
        """Give up: release the descriptors and remove everything extracted."""
        self._release()
        # Modes from the archive could make a directory unreadable to a non-root owner.
        for path in sorted(self.root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir() and not path.is_symlink():
                with contextlib.suppress(OSError):
                    path.chmod(0o700)
        shutil.rmtree(self.root, ignore_errors=True)

    def _release(self) -> None:
        for fd in (self._file, self._root_fd, *self._open_dirs.values()):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._file, self._root_fd = None, None
        self._open_dirs.clear()

    def _check_links(self) -> None:
        root = Path(os.path.realpath(self.root))
        for name in self._relative_links:
            resolved = Path(os.path.realpath(self.root / name))
            inside = resolved == root or root in resolved.parents
            allowed = any(_within(PurePosixPath(resolved), r) for r in self._allowed)
            if not (inside or allowed):
                raise UnsafeMemberError(f"{name!r} leads out of the backup through other links.")

    # -- MemberSink ------------------------------------------------------------------------------------

    def directory(self, member: MemberInfo) -> None:
        if not member.name:
            return  # the archive's own folder is the root
        with _guard(member.name):
            self._directory(member)

    def _directory(self, member: MemberInfo) -> None:
        parent, leaf = self._parent(member.name)
        try:
            os.mkdir(leaf, 0o700, dir_fd=parent)
        except FileExistsError:
            os.close(os.open(leaf, _DIR_FLAGS, dir_fd=parent))  # must be a real directory
        self._chown(leaf, parent, member)
        self._dirs.append(member)

    def symlink(self, member: MemberInfo) -> None:
        target = PurePosixPath(member.target)
        if target.is_absolute() and not any(_within(target, root) for root in self._allowed):
            raise UnsafeMemberError(f"{member.name!r} links to {member.target!r}, outside the backup.")
        if not target.is_absolute():
            self._relative_links.append(member.name)
        with _guard(member.name):
            self._symlink(member)

    def _symlink(self, member: MemberInfo) -> None:
        parent, leaf = self._parent(member.name)
        os.symlink(member.target, leaf, dir_fd=parent)
        self._chown(leaf, parent, member)
        os.utime(leaf, ns=(member.mtime_ns, member.mtime_ns), dir_fd=parent, follow_symlinks=False)

    def begin_file(self, member: MemberInfo) -> None:
        with _guard(member.name):
            parent, leaf = self._parent(member.name)
            self._file = os.open(leaf, _FILE_FLAGS, 0o600, dir_fd=parent)
        self._current = member

    def write(self, data: bytes) -> None:
        assert self._file is not None and self._current is not None
        view = memoryview(data)
        with _guard(self._current.name):
            while view:
                view = view[os.write(self._file, view) :]

    def end_file(self) -> None:
        assert self._file is not None and self._current is not None
        member, fd = self._current, self._file
        try:
            with _guard(member.name):
                if self._keep_owner:
                    os.fchown(fd, member.uid, member.gid)
                os.fchmod(fd, member.mode)
                os.utime(fd, ns=(member.mtime_ns, member.mtime_ns))
        finally:
            os.close(fd)
            self._file, self._current = None, None

    # -- paths -----------------------------------------------------------------------------------------

    def _parent(self, name: str) -> tuple[int, str]:
        """A descriptor of ``name``'s parent (created as needed, never through a link), and the last
        path component. The descriptor is borrowed from a small cache: the caller must not close it."""
        parent, _, leaf = name.rpartition("/")
        return self._directory_fd(parent), leaf

    def _directory_fd(self, path: str) -> int:
        """The open directory at ``path`` ('' for the root), walked one component at a time from
        the root with ``O_NOFOLLOW``. Members come depth first, so recent ones are kept open: a
        directory cannot turn into a link afterwards (names are unique, and nothing replaces one)."""
        assert self._root_fd is not None, "the extractor was closed"
        if not path:
            return self._root_fd
        fd = self._open_dirs.get(path)
        if fd is not None:
            self._open_dirs.move_to_end(path)
            return fd
        above, _, part = path.rpartition("/")
        parent = self._directory_fd(above)
        with contextlib.suppress(FileExistsError):
            os.mkdir(part, 0o700, dir_fd=parent)
        try:
            fd = os.open(part, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            raise UnsafeMemberError(f"{path!r} would be written through a link or a file.") from exc
        self._open_dirs[path] = fd
        if len(self._open_dirs) > OPEN_DIRECTORIES:
            os.close(self._open_dirs.popitem(last=False)[1])
        return fd

    def _chown(self, leaf: str, parent: int, member: MemberInfo) -> None:
        if self._keep_owner:
            os.chown(leaf, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)


@contextlib.contextmanager
def _guard(name: str) -> Iterator[None]:
    """An operating-system failure while extracting ``name`` becomes an ``ExtractionFailedError``."""
    try:
        yield
    except OSError as exc:
        raise ExtractionFailedError(f"{name!r} cannot be extracted: {exc.strerror or exc}.") from exc


def _within(path: PurePosixPath, root: PurePosixPath) -> bool:
    return ".." not in path.parts and (path == root or root in path.parents)
