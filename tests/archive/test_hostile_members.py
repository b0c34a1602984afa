"""Archives built to escape the extraction root: hostile names, link and device members, oversized
members. Each is refused with ``UnsafeMemberError`` naming the member, before anything of it is
written, and nothing appears outside the root: a canary directory next to it stays untouched, and a
listing of the whole temporary directory outside the root does not change."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from sddc_backup.archive.entries import Entry, EntryType
from sddc_backup.archive.errors import UnsafeMemberError
from sddc_backup.archive.extract import SafeExtractor
from sddc_backup.archive.reader import DiscardingSink
from tests.archive.builders import (
    Member,
    file_entry,
    hostile,
    listing,
    member,
    our_archive,
    read,
    tar_of,
)

REG, DIR, SYM = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE
OK = member("base/ok", data=b"harmless\n")
PWNED = b"written outside the root\n"


@dataclass
class Area:
    """``tmp_path`` holds the extraction root, a canary directory next to it, and ``protected``, an
    absent protected path. Absolute links may point into both ``protected`` and the canary, so a
    member that got through a link would land in the canary, where the checks see it."""

    tmp: Path
    root: Path
    canary: Path
    protected: Path

    def refuse(self, members: list[Member], *, reader_rule: bool = True, **limits: int) -> str:
        """Extract and expect a refusal; returns the message. ``reader_rule``: plain verification
        refuses it too (it does not depend on the extraction root)."""
        blob = hostile(members)
        before = listing(self.tmp)
        extractor = SafeExtractor(self.root, (str(self.protected), str(self.canary)))
        with pytest.raises(UnsafeMemberError) as exc:
            read(blob, extractor, **limits)
        assert listing(self.tmp, excluding=self.root) == before
        assert (self.canary / "keep").read_bytes() == b"canary\n"
        assert not self.protected.exists()
        if reader_rule:
            with pytest.raises(UnsafeMemberError):
                read(blob, DiscardingSink(), **limits)
        return str(exc.value)


@pytest.fixture
def area(tmp_path: Path) -> Area:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep").write_bytes(b"canary\n")
    return Area(tmp_path, tmp_path / "root", canary, tmp_path / "protected")


# --- names --------------------------------------------------------------------------------------------


def test_an_absolute_name_is_refused(area: Area) -> None:
    name = f"{area.canary}/x"
    message = area.refuse([member(name, data=PWNED)])
    assert repr(name) in message
    assert "absolute path" in message


def test_an_absolute_name_after_a_valid_member_is_refused(area: Area) -> None:
    name = f"{area.canary}/x"
    assert repr(name) in area.refuse([OK, member(name, data=PWNED)])


@pytest.mark.parametrize("name", ["base/../canary/x", "base/a/../../canary/x", "base/./x", "base//x"])
def test_dot_segments_are_refused(area: Area, name: str) -> None:
    message = area.refuse([OK, member(name, data=PWNED)])
    assert repr(name) in message
    assert "climbs out" in message


def test_a_member_outside_the_base_folder_is_refused(area: Area) -> None:
    message = area.refuse([OK, member("canary/x", data=PWNED)])
    assert "'canary/x' is outside the archive's folder 'base'" in message


def test_a_name_longer_than_4096_bytes_is_refused(area: Area) -> None:
    # Few, long components: should the limit ever go, the extractor must not build a tree too deep for
    # shutil.rmtree (pytest's own temporary-directory cleanup) to remove.
    name = "base/" + ("d" * 200 + "/") * 21 + "x"
    assert len(name.encode()) > 4096
    message = area.refuse([OK, member(name, data=PWNED)])
    assert "too long" in message
    assert name[:40] in message


def test_a_name_with_a_nul_byte_is_refused(area: Area) -> None:
    name = "base/a\0b" + "c" * 200  # too long for the ustar field: it goes into a pax record, NUL and all
    with tarfile.open(fileobj=io.BytesIO(tar_of([member(name, data=PWNED)]))) as tar:
        assert tar.getnames() == [name], "tarfile must carry the NUL for this test to mean anything"
    message = area.refuse([OK, member(name, data=PWNED)])
    assert "NUL" in message
    assert "base/a\\x00b" in message


def test_an_empty_name_is_refused(area: Area) -> None:
    assert "'' is an absolute path" in area.refuse([member("", data=PWNED)])


# --- member types -------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["base/ok", "/etc/passwd", "../canary/keep"])
def test_a_hard_link_is_refused_wherever_it_points(area: Area, target: str) -> None:
    message = area.refuse([OK, member("base/h", tarfile.LNKTYPE, link=target)])
    assert "'base/h' is a hard link" in message


@pytest.mark.parametrize(
    "kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE], ids=["char-device", "block-device", "fifo"]
)
def test_devices_and_fifos_are_refused(area: Area, kind: bytes) -> None:
    message = area.refuse([OK, member("base/dev", kind)])
    assert "'base/dev' is a hard link, device, FIFO" in message
    assert not (area.root / "dev").exists()


def test_a_member_over_the_size_limit_is_refused_before_any_of_it_is_written(area: Area) -> None:
    message = area.refuse([OK, member("base/big", data=b"x" * 11)], max_member_size=10)
    assert "'base/big' is larger than the limit of 10 bytes" in message
    assert not (area.root / "big").exists()


# --- symbolic links -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("base/a", "../../canary"),
        ("base/a", ".."),
        ("base/a", "./.."),
        ("base/a", "x/../../canary"),
        ("base/d/l", "../../canary/keep"),
        ("base/d/l", "../x/../.."),
    ],
)
def test_a_relative_link_that_climbs_out_is_refused(area: Area, name: str, target: str) -> None:
    message = area.refuse([OK, member(name, SYM, link=target)])
    assert f"{name!r} links to {target!r}, outside the archive's folder" in message


@pytest.mark.parametrize("target", ["/etc/passwd", "{protected}/../../etc", "{protected}X/y", "/"])
def test_an_absolute_link_outside_the_protected_paths_is_refused(area: Area, target: str) -> None:
    target = target.format(protected=area.protected)
    message = area.refuse([OK, member("base/l", SYM, link=target)], reader_rule=False)
    assert f"'l' links to {target!r}, outside the backup" in message


@pytest.mark.parametrize(
    "members",
    [
        [member("base/d", SYM, link="."), member("base/d/x", data=PWNED)],
        [member("base/sub", DIR), member("base/d", SYM, link="sub"), member("base/d/x", data=PWNED)],
        [member("base/d", SYM, link="{canary}"), member("base/d/x", data=PWNED)],
        [member("base/d", SYM, link="{canary}"), member("base/d/e/x", data=PWNED)],
    ],
    ids=["link-to-itself", "link-to-sibling", "absolute-link-to-canary", "absolute-link-new-dir"],
)
def test_nothing_is_written_through_a_link(area: Area, members: list[Member]) -> None:
    """The extractor refuses (rather than writing inside the root) a member whose path crosses a link,
    even a link that is itself allowed."""
    for info, _ in members:
        info.linkname = info.linkname.format(canary=area.canary)
    message = area.refuse(members, reader_rule=False)
    assert "would be written through a link or a file" in message
    assert (area.root / "d").is_symlink()
    assert not (area.root / "x").exists()
    assert not (area.root / "sub" / "x").exists()
    assert [p.name for p in area.canary.iterdir()] == ["keep"]


# --- what is allowed ----------------------------------------------------------------------------------


def test_links_inside_the_folder_or_the_protected_paths_are_extracted_as_links(area: Area) -> None:
    absolute = f"{area.protected}/etc/app/v2.conf"
    entries = [
        Entry("files", EntryType.DIR, mode=0o755),
        Entry("files/app", EntryType.DIR, mode=0o755),
        file_entry("files/app/v2.conf", b"v2\n"),
        Entry("files/app/current", EntryType.SYMLINK, target="v2.conf"),
        Entry("files/app/up", EntryType.SYMLINK, target="../app/v2.conf"),
        Entry("files/app/protected", EntryType.SYMLINK, target=absolute),
        Entry("files/app/here", EntryType.SYMLINK, target=str(area.protected)),
    ]
    before = listing(area.tmp)
    extractor = SafeExtractor(area.root, (str(area.protected),))
    report = read(our_archive(entries), extractor)
    extractor.close()
    assert not report.legacy
    app = area.root / "files" / "app"
    links = {name: str((app / name).readlink()) for name in ("current", "up", "protected", "here")}
    assert links == {
        "current": "v2.conf",
        "up": "../app/v2.conf",
        "protected": absolute,
        "here": str(area.protected),
    }
    assert (app / "current").read_bytes() == b"v2\n"
    assert not area.protected.exists(), "an absolute link must not be followed or its target created"
    assert listing(area.tmp, excluding=area.root) == before
