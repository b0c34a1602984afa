"""``SafeExtractor`` keeps a bounded cache of open directories: many more directories than it holds,
visited in any order and revisited after they were evicted, still come out exactly; no descriptor is
left open at the end, whichever way it ends; and a path through a file or a link is still refused.

The extractor is driven through its ``MemberSink`` methods directly, in orders that an archive from
our writer would not have."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from sddc_backup.archive.entries import EntryType
from sddc_backup.archive.errors import ExtractionFailedError, UnsafeMemberError
from sddc_backup.archive.extract import OPEN_DIRECTORIES, SafeExtractor
from sddc_backup.archive.reader import MemberInfo
from tests.archive.builders import listing

NS = 1_700_000_000_123_456_789


def info(
    name: str, kind: EntryType = EntryType.FILE, *, mode: int = 0o640, mtime_ns: int = NS, target: str = ""
) -> MemberInfo:
    return MemberInfo(name, kind, mode, mtime_ns, os.getuid(), os.getgid(), 0, target)


def put_file(extractor: SafeExtractor, name: str, data: bytes, mode: int = 0o640) -> None:
    extractor.begin_file(info(name, mode=mode))
    extractor.write(data[: len(data) // 2])
    extractor.write(data[len(data) // 2 :])
    extractor.end_file()


def open_fds() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def tree(root: Path) -> tuple[dict[str, bytes], set[str], set[str]]:
    """The files (with their bytes), directories and links under ``root``."""
    found: dict[str, bytes] = {}
    dirs: set[str] = set()
    links: set[str] = set()
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            links.add(rel)
        elif path.is_dir():
            dirs.add(rel)
        else:
            found[rel] = path.read_bytes()
    return found, dirs, links


def directories() -> list[str]:
    """About 200 directories: 20 wide ones with 5 children each, and a chain deeper than the cache."""
    wide = [f"w{i:02d}" for i in range(20)]
    wide += [f"w{i:02d}/s{j}" for i in range(20) for j in range(5)]
    chain = ["deep"]
    for level in range(1, OPEN_DIRECTORIES + 20):
        chain.append(f"{chain[-1]}/d{level:02d}")
    return wide + chain


def test_many_directories_in_any_order_come_out_exactly(tmp_path: Path) -> None:
    dirs = directories()
    assert len(dirs) > 3 * OPEN_DIRECTORIES
    rng = random.Random(20261127)
    before = open_fds()
    most = 0
    expected: dict[str, bytes] = {}
    extractor = SafeExtractor(tmp_path / "root")
    # Three passes over all directories, each in another order, so that every directory is visited
    # again after a few hundred others pushed it out of the cache; the deepest ones first, too.
    for round_ in range(3):
        order = dirs[::-1] if round_ == 0 else rng.sample(dirs, len(dirs))
        for directory in order:
            name = f"{directory}/f{round_}"
            data = f"{name}\n".encode() * (round_ + 1)
            put_file(extractor, name, data)
            expected[name] = data
            most = max(most, open_fds() - before)
    # Directory members (with their modes and times) and links, after their directories were evicted.
    modes = {}
    for i, directory in enumerate(rng.sample(dirs, 40)):
        modes[directory] = (0o755, 0o750, 0o700)[i % 3]
        extractor.directory(info(directory, EntryType.DIR, mode=modes[directory], mtime_ns=NS + i))
    for directory in rng.sample(dirs, 30):
        extractor.symlink(info(f"{directory}/link", EntryType.SYMLINK, target="f0"))
    extractor.close()

    # The root, at most OPEN_DIRECTORIES directories, and the file being written, never more.
    assert most <= OPEN_DIRECTORIES + 1
    assert most == OPEN_DIRECTORIES + 1, "more than OPEN_DIRECTORIES directories are in use: all kept open"
    assert open_fds() == before

    root = tmp_path / "root"
    files, made_dirs, links = tree(root)
    assert files == expected
    assert made_dirs == set(dirs)
    assert {p.rsplit("/", 1)[0] for p in links} <= set(dirs)
    assert len(links) == 30
    for i, (directory, mode) in enumerate(modes.items()):
        st = (root / directory).lstat()
        assert (st.st_mode & 0o7777, st.st_mtime_ns) == (mode, NS + i)
    link = next(iter(links))
    assert (root / link).read_bytes() == expected[link.rsplit("/", 1)[0] + "/f0"]


def test_a_deep_chain_is_walked_through_the_cache_when_its_top_was_evicted(tmp_path: Path) -> None:
    extractor = SafeExtractor(tmp_path / "root")
    chain = "/".join(f"c{i}" for i in range(OPEN_DIRECTORIES * 2))
    put_file(extractor, f"{chain}/bottom", b"bottom\n")
    for i in range(OPEN_DIRECTORIES * 2):  # push the whole chain out of the cache
        put_file(extractor, f"other{i}/f", b"x")
    put_file(extractor, f"{chain}/second", b"second\n")
    put_file(extractor, "c0/top", b"top\n")
    extractor.close()
    root = tmp_path / "root"
    assert (root / chain / "bottom").read_bytes() == b"bottom\n"
    assert (root / chain / "second").read_bytes() == b"second\n"
    assert (root / "c0" / "top").read_bytes() == b"top\n"
    assert sorted(p.name for p in (root / chain).iterdir()) == ["bottom", "second"]


# --- descriptors --------------------------------------------------------------------------------------


def fill(extractor: SafeExtractor, count: int) -> None:
    for i in range(count):
        extractor.directory(info(f"a{i % 7}/b{i}", EntryType.DIR))
        put_file(extractor, f"a{i % 7}/b{i}/f", b"data\n")


def test_close_leaves_no_descriptor_open(tmp_path: Path) -> None:
    before = open_fds()
    extractor = SafeExtractor(tmp_path / "root")
    fill(extractor, 3 * OPEN_DIRECTORIES)
    assert open_fds() > before + OPEN_DIRECTORIES // 2
    extractor.close()
    assert open_fds() == before
    assert (tmp_path / "root" / "a3" / "b3" / "f").read_bytes() == b"data\n"


@pytest.mark.parametrize("mid_file", [False, True], ids=["between-members", "within-a-file"])
def test_abort_leaves_no_descriptor_open_and_no_tree(tmp_path: Path, mid_file: bool) -> None:
    before = open_fds()
    extractor = SafeExtractor(tmp_path / "root")
    fill(extractor, 3 * OPEN_DIRECTORIES)
    if mid_file:
        extractor.begin_file(info("a1/partial"))
        extractor.write(b"half")
    extractor.abort()
    assert open_fds() == before
    assert not (tmp_path / "root").exists()


def test_a_failure_in_the_with_block_leaves_no_descriptor_open(tmp_path: Path) -> None:
    before = open_fds()
    with pytest.raises(RuntimeError), SafeExtractor(tmp_path / "root") as extractor:
        fill(extractor, 2 * OPEN_DIRECTORIES)
        raise RuntimeError("the archive is corrupt")
    assert open_fds() == before
    assert not (tmp_path / "root").exists()


def test_a_failure_at_close_leaves_no_descriptor_open(tmp_path: Path) -> None:
    before = open_fds()
    with pytest.raises(UnsafeMemberError, match="leads out"), SafeExtractor(tmp_path / "root") as extractor:
        fill(extractor, 2 * OPEN_DIRECTORIES)
        extractor.symlink(info("here", EntryType.SYMLINK, target="."))
        extractor.symlink(info("a1/out", EntryType.SYMLINK, target="../here/.."))
    assert open_fds() == before
    assert not (tmp_path / "root").exists()


# --- paths through a file or a link -------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep").write_bytes(b"canary\n")
    return canary


def refused(extractor: SafeExtractor, name: str, how: str) -> str:
    with pytest.raises(UnsafeMemberError) as exc:
        if how == "file":
            extractor.begin_file(info(name))
        elif how == "directory":
            extractor.directory(info(name, EntryType.DIR))
        else:
            extractor.symlink(info(name, EntryType.SYMLINK, target="keep"))
    assert "would be written through a link or a file" in str(exc.value)
    return str(exc.value)


@pytest.mark.parametrize("how", ["file", "directory", "symlink"])
@pytest.mark.parametrize("evicted", [False, True], ids=["cached-parent", "evicted-parent"])
def test_a_member_under_a_regular_file_is_refused(
    tmp_path: Path, outside: Path, how: str, evicted: bool
) -> None:
    before = listing(tmp_path)
    extractor = SafeExtractor(tmp_path / "root")
    put_file(extractor, "top/f", b"a file\n")
    if evicted:
        fill(extractor, 2 * OPEN_DIRECTORIES)
    refused(extractor, "top/f/x", how)
    refused(extractor, "top/f/a/b", how)
    extractor.close()
    root = tmp_path / "root"
    assert (root / "top" / "f").read_bytes() == b"a file\n"
    assert not any(p.name in ("x", "a", "b") for p in root.rglob("*"))
    assert listing(tmp_path, excluding=root) == before


def test_a_file_in_place_of_a_directory_made_earlier_is_refused(tmp_path: Path) -> None:
    extractor = SafeExtractor(tmp_path / "root")
    put_file(extractor, "d/inner", b"x")
    with pytest.raises(ExtractionFailedError, match="'d'"):
        extractor.begin_file(info("d"))
    extractor.close()
    assert (tmp_path / "root" / "d").is_dir()


@pytest.mark.parametrize("target", ["{canary}", ".", "real", "real/sub"])
@pytest.mark.parametrize("how", ["file", "directory", "symlink"])
def test_a_member_under_a_symlinked_directory_is_refused(
    tmp_path: Path, outside: Path, target: str, how: str
) -> None:
    """The link comes first, then members under it, even with its target's directory already open."""
    before = listing(tmp_path)
    extractor = SafeExtractor(tmp_path / "root", (str(outside),))
    put_file(extractor, "real/sub/f", b"real\n")  # "real" and "real/sub" are open in the cache
    extractor.symlink(info("link", EntryType.SYMLINK, target=target.format(canary=outside)))
    refused(extractor, "link/x", how)
    refused(extractor, "link/e/x", how)
    extractor.close()
    root = tmp_path / "root"
    assert (root / "link").is_symlink()
    assert sorted(p.relative_to(root).as_posix() for p in (root / "real").rglob("*")) == [
        "real/sub",
        "real/sub/f",
    ]
    assert [p.name for p in outside.iterdir()] == ["keep"]
    assert listing(tmp_path, excluding=root) == before
