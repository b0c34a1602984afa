"""Edge cases of the reader and the extractor: trailing data, links through links, duplicates,
hostile own documents, and cleanup after a failure."""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

import pytest

from sddc_backup.archive.errors import (
    CorruptArchiveError,
    ExtractionFailedError,
    ManifestMismatchError,
    UnsafeMemberError,
)
from sddc_backup.archive.extract import SafeExtractor
from sddc_backup.archive.reader import DiscardingSink
from tests.archive.builders import encrypt, hostile, member, our_archive, read, tar_of

SYM = tarfile.SYMTYPE


@pytest.mark.parametrize("garbage", range(1, 40))
def test_any_data_after_the_gzip_stream_is_refused(garbage: int) -> None:
    plain = gzip.compress(tar_of([member("base/a", data=b"1")])) + b"G" * garbage
    with pytest.raises(CorruptArchiveError, match="after the end of the compressed stream"):
        read(encrypt(plain), DiscardingSink())


@pytest.mark.parametrize("first", [".", "{protected}"])
def test_a_link_that_leaves_through_another_link_is_refused_and_removed(tmp_path: Path, first: str) -> None:
    protected = tmp_path / "protected"
    protected.mkdir()
    blob = hostile(
        [
            member("base/up", SYM, link=first.format(protected=protected)),
            member("base/esc", SYM, link="up/.."),
        ]
    )
    root = tmp_path / "root"
    with (
        pytest.raises(UnsafeMemberError, match="through other links"),
        SafeExtractor(root, (str(protected),)) as sink,
    ):
        read(blob, sink)
    assert not root.exists()


def test_a_member_that_appears_twice_is_refused() -> None:
    blob = hostile([member("base/a", data=b"1"), member("base/a", data=b"2")])
    with pytest.raises(UnsafeMemberError, match="appears twice"):
        read(blob, DiscardingSink())


def test_a_file_in_place_of_the_archive_folder_is_refused() -> None:
    with pytest.raises(UnsafeMemberError, match="in place of the archive's folder"):
        read(hostile([member("base", data=b"x")]), DiscardingSink())


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("base/metadata.json", b"[1, 2]", CorruptArchiveError),
        ("base/metadata.json", b"[" * 100_000, CorruptArchiveError),
        ("base/metadata.json", b" " * (2 << 20) + b"{}", UnsafeMemberError),
        (
            "base/manifest.json",
            b'{"members": [{"name": "x", "type": "file", "size": 1e400}]}',
            ManifestMismatchError,
        ),
    ],
    ids=["not-an-object", "deeply-nested", "too-large", "overflowing-size"],
)
def test_hostile_own_documents_are_archive_errors(name: str, data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        read(hostile([member(name, data=data)]), DiscardingSink())


def test_a_failed_extraction_removes_its_folder_and_releases_descriptors(tmp_path: Path) -> None:
    blob = our_archive()
    before = len(list(Path("/proc/self/fd").iterdir()))
    for i in range(5):
        root = tmp_path / f"root{i}"
        with pytest.raises(CorruptArchiveError), SafeExtractor(root) as sink:
            read(blob[: len(blob) - 40], sink, chunk=512)
        assert not root.exists()
    assert len(list(Path("/proc/self/fd").iterdir())) == before


def test_a_name_the_filesystem_cannot_hold_is_an_extraction_error(tmp_path: Path) -> None:
    with (
        pytest.raises(ExtractionFailedError, match="File name too long"),
        SafeExtractor(tmp_path / "r") as sink,
    ):
        read(hostile([member("base/" + "a" * 300, data=b"1")]), sink)
    assert not (tmp_path / "r").exists()


def test_a_successful_extraction_through_the_context_manager_is_complete(tmp_path: Path) -> None:
    with SafeExtractor(tmp_path / "r") as sink:
        report = read(our_archive(), sink)
    assert not report.legacy
    assert any((tmp_path / "r").rglob("*"))
