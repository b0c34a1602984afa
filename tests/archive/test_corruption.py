"""Damaged archives: a wrong passphrase, truncation, flipped bits, members changed behind the manifest's
back, and legacy archives. Every failure is the documented ``ArchiveError`` subclass, names what
failed, returns no report, and leaves nothing behind (no decrypted file, nothing outside the
extraction root)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sddc_backup.archive.errors import (
    CorruptArchiveError,
    ManifestMismatchError,
    WrongPassphraseError,
)
from sddc_backup.archive.extract import SafeExtractor
from sddc_backup.archive.reader import DiscardingSink, read_archive
from sddc_backup.services import archives
from tests.archive.builders import (
    BASE,
    CIPHER_ARGS,
    OPENSSL,
    PASS,
    Member,
    flip,
    listing,
    member,
    members_of,
    our_archive,
    read,
    reassemble,
)

BLOB = our_archive()
HEADER, BLOCK = 16, 16
V2 = f"{BASE}/files/etc/app/v2.conf"
chunk_sizes = st.sampled_from([1, 7, 16, 100, 4096, 1 << 20])
wrong_passphrases = st.binary(max_size=64).filter(lambda p: p != PASS)


def write_blob(directory: Path, blob: bytes) -> Path:
    path = directory / f"{BASE}.tar.gz"
    path.write_bytes(blob)
    return path


# --- wrong passphrase ---------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(passphrase=wrong_passphrases, chunk=chunk_sizes)
def test_every_wrong_passphrase_is_reported_as_a_wrong_passphrase(passphrase: bytes, chunk: int) -> None:
    chunks = [BLOB[i : i + chunk] for i in range(0, len(BLOB), chunk)]
    with pytest.raises(WrongPassphraseError, match="passphrase does not open this archive"):
        read_archive(chunks, passphrase, DiscardingSink())


@settings(max_examples=30, deadline=None)
@given(passphrase=wrong_passphrases)
def test_decrypt_with_a_wrong_passphrase_leaves_no_output_and_no_part_file(passphrase: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        source = write_blob(Path(scratch), BLOB)
        out = Path(scratch) / "plain.tar.gz"
        with pytest.raises(WrongPassphraseError, match="passphrase"):
            archives.decrypt(source, passphrase, out)
        assert listing(Path(scratch)) == {source.name}


# --- truncation ---------------------------------------------------------------------------------------


def assert_truncation_is_reported(cut: int, exc: pytest.ExceptionInfo[Exception]) -> None:
    if cut > HEADER and cut % BLOCK == 0:
        # A cut on a block boundary leaves a well-formed ciphertext whose last block is not the padding:
        # openssl_enc documents that this is indistinguishable from a wrong passphrase.
        assert exc.type in (CorruptArchiveError, WrongPassphraseError), (
            f"block-aligned cut at {cut}: expected a corrupt archive or invalid padding, got {exc.type}"
        )
    else:
        assert exc.type is CorruptArchiveError, f"cut at {cut}: {exc.type.__name__}: {exc.value}"
    if exc.type is CorruptArchiveError:
        assert "truncated" in str(exc.value)
    else:
        assert "padding is invalid" in str(exc.value)


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(BLOB) - 1), chunk=chunk_sizes)
@example(cut=0, chunk=1 << 20)
@example(cut=8, chunk=1 << 20)  # inside the header, after the magic
@example(cut=HEADER, chunk=1 << 20)  # the header and nothing else
@example(cut=HEADER + 5, chunk=1)  # inside the gzip header
@example(cut=len(BLOB) // 2, chunk=7)  # inside the deflate data
@example(cut=len(BLOB) - BLOCK, chunk=1 << 20)  # right before the last block
@example(cut=len(BLOB) - 1, chunk=16)
def test_a_truncated_archive_never_reads_as_intact(cut: int, chunk: int) -> None:
    with pytest.raises((CorruptArchiveError, WrongPassphraseError)) as exc:
        read(BLOB[:cut], DiscardingSink(), chunk=chunk)
    assert_truncation_is_reported(cut, exc)


@pytest.mark.parametrize("cut", [0, 10, HEADER, len(BLOB) // 2 + 3, len(BLOB) - 1])
def test_decrypt_of_a_truncated_archive_leaves_no_output_and_no_part_file(tmp_path: Path, cut: int) -> None:
    source = write_blob(tmp_path, BLOB[:cut])
    with pytest.raises(CorruptArchiveError, match="truncated"):
        archives.decrypt(source, PASS, tmp_path / "plain.tar.gz")
    assert listing(tmp_path) == {source.name}


# --- flipped bits -------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(bit=st.integers(min_value=HEADER * 8, max_value=len(BLOB) * 8 - 1), chunk=chunk_sizes)
@example(bit=HEADER * 8, chunk=1 << 20)  # the first ciphertext block: garbles the gzip magic
@example(bit=len(BLOB) * 8 - 1, chunk=1 << 20)  # the last block: garbles the padding
@example(bit=(len(BLOB) - 2 * BLOCK) * 8, chunk=16)  # the block before: flips a padding bit
@example(bit=len(BLOB) * 4, chunk=7)  # the middle of the deflate data
def test_a_flipped_bit_after_the_header_is_always_caught(bit: int, chunk: int) -> None:
    offset = bit // 8
    with pytest.raises((CorruptArchiveError, WrongPassphraseError)) as exc:
        read(flip(BLOB, bit), DiscardingSink(), chunk=chunk)
    if offset < HEADER + BLOCK:
        assert exc.type is WrongPassphraseError, "the first block decrypts to garbage: no gzip magic"
    elif offset < len(BLOB) - 2 * BLOCK:
        # The padding is intact, so the gzip CRC, the deflate data or the tar/JSON structure catches it.
        assert exc.type is CorruptArchiveError, f"byte {offset}: {exc.type.__name__}: {exc.value}"
        assert any(w in str(exc.value) for w in ("compressed stream", "tar structure", "JSON")), exc.value
    else:
        # The last two blocks carry the padding: invalid padding, or by chance valid padding over a
        # garbled gzip trailer.
        assert any(w in str(exc.value) for w in ("padding", "compressed stream", "truncated")), exc.value


@pytest.mark.parametrize("bit", [64, 71, 100, 127])
def test_a_flipped_bit_in_the_salt_reads_as_a_wrong_passphrase(bit: int) -> None:
    with pytest.raises(WrongPassphraseError, match="passphrase does not open this archive"):
        read(flip(BLOB, bit), DiscardingSink())


@pytest.mark.parametrize("bit", [0, 13, 63])
def test_a_flipped_bit_in_the_magic_is_not_an_openssl_file(bit: int) -> None:
    with pytest.raises(CorruptArchiveError, match="does not start with 'Salted__'"):
        read(flip(BLOB, bit), DiscardingSink())


# --- members changed behind the manifest's back -----------------------------------------------------


def rebuilt(change: Callable[[list[Member]], list[Member]]) -> bytes:
    """Our archive, opened with the real openssl and tarfile, changed, and put back together."""
    return reassemble(change(members_of(BLOB)))


def altered_v2(members: list[Member]) -> list[Member]:
    return [(info, invert_first(data) if info.name == V2 else data) for info, data in members]


def invert_first(data: bytes | None) -> bytes:
    assert data, "the member to alter must have content"
    return bytes([data[0] ^ 0xFF]) + data[1:]


def test_a_member_altered_in_place_is_named_with_both_digests() -> None:
    data = next(d for info, d in members_of(BLOB) if info.name == V2)
    assert data is not None
    altered = invert_first(data)
    with pytest.raises(ManifestMismatchError) as exc:
        read(rebuilt(altered_v2), DiscardingSink())
    message = str(exc.value)
    assert V2 in message
    assert hashlib.sha256(data).hexdigest() in message
    assert hashlib.sha256(altered).hexdigest() in message


def with_unlisted(members: list[Member]) -> list[Member]:
    return [*members[:-1], member(f"{BASE}/files/etc/app/extra", data=b"planted\n"), members[-1]]


def without_v2(members: list[Member]) -> list[Member]:
    return [(info, data) for info, data in members if info.name != V2]


def after_manifest(members: list[Member]) -> list[Member]:
    return [*members, member(f"{BASE}/late", data=b"late\n")]


def without_manifest(members: list[Member]) -> list[Member]:
    return [(info, data) for info, data in members if not info.name.endswith("/manifest.json")]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (with_unlisted, f"{BASE}/files/etc/app/extra is in the archive but not in its manifest"),
        (without_v2, f"{V2} is in the manifest but not in the archive"),
        (after_manifest, f"{BASE}/late comes after manifest.json"),
        (without_manifest, "manifest.json is missing"),
    ],
    ids=["unlisted-member", "missing-member", "member-after-manifest", "no-manifest"],
)
def test_the_manifest_catches_members_added_removed_or_misplaced(
    change: Callable[[list[Member]], list[Member]], expected: str
) -> None:
    with pytest.raises(ManifestMismatchError) as exc:
        read(rebuilt(change), DiscardingSink())
    assert expected in str(exc.value)


def test_the_untouched_rebuild_verifies() -> None:
    """The control for the tests above: taking the archive apart and back together changes nothing."""
    report = read(rebuilt(list), DiscardingSink())
    assert not report.legacy
    assert report.base == BASE


# --- legacy archives ----------------------------------------------------------------------------------


def legacy_archive(tmp_path: Path) -> bytes:
    folder = tmp_path / "src" / "folder"
    (folder / "etc").mkdir(parents=True)
    (folder / "etc" / "app.conf").write_bytes(b"port=443\n" * 500)
    (folder / "notes.txt").write_text("plain tar, no manifest\n")
    (folder / "etc" / "current").symlink_to("app.conf")
    with subprocess.Popen(["tar", "-cz", "-C", str(folder.parent), "folder"], stdout=subprocess.PIPE) as tar:
        encrypted = subprocess.run(
            [OPENSSL, "enc", *CIPHER_ARGS, "-pass", f"pass:{PASS.decode()}"],
            stdin=tar.stdout,
            capture_output=True,
            check=True,
        ).stdout
    assert tar.returncode == 0
    return encrypted


def test_a_legacy_archive_from_the_plain_pipeline_verifies_as_legacy(tmp_path: Path) -> None:
    report = archives.verify(write_blob(tmp_path, legacy_archive(tmp_path)), PASS)
    assert report.legacy is True
    assert report.base == "folder"
    assert {m.name for m in report.members} >= {
        "folder/etc/app.conf",
        "folder/notes.txt",
        "folder/etc/current",
    }


@pytest.mark.parametrize("where", [0.0, 0.3, 0.7, 1.0])
def test_a_legacy_archive_with_a_flipped_bit_fails(tmp_path: Path, where: float) -> None:
    blob = legacy_archive(tmp_path)
    offset = HEADER + BLOCK + int(where * (len(blob) - HEADER - 4 * BLOCK))  # clear of the padding
    with pytest.raises(CorruptArchiveError, match=r"compressed stream|tar structure"):
        archives.verify(write_blob(tmp_path, flip(blob, offset * 8 + 3)), PASS)


# --- extraction after a failure -----------------------------------------------------------------------

FAILURES: dict[str, tuple[Callable[[], bytes], type[Exception], str]] = {
    "wrong-passphrase": (lambda: our_archive(passphrase=b"other"), WrongPassphraseError, "passphrase"),
    "truncated": (lambda: BLOB[: len(BLOB) - 40], CorruptArchiveError, "truncated"),
    "flipped-bit": (lambda: flip(BLOB, len(BLOB) * 4), CorruptArchiveError, "compressed stream|tar|JSON"),
    "altered-member": (lambda: rebuilt(altered_v2), ManifestMismatchError, f"{V2} differs"),
    "unlisted-member": (lambda: rebuilt(with_unlisted), ManifestMismatchError, "extra is in the archive"),
    "missing-member": (lambda: rebuilt(without_v2), ManifestMismatchError, f"{V2} is in the manifest"),
    "member-after-manifest": (lambda: rebuilt(after_manifest), ManifestMismatchError, "after manifest"),
    "no-manifest": (lambda: rebuilt(without_manifest), ManifestMismatchError, "manifest.json is missing"),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_failed_extraction_leaves_nothing_outside_its_root(tmp_path: Path, failure: str) -> None:
    make, expected, message = FAILURES[failure]
    blob = make()
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep").write_text("untouched\n")
    root = tmp_path / "root"
    before = listing(tmp_path)
    with pytest.raises(expected, match=message):
        read(blob, SafeExtractor(root, (str(canary),)), chunk=512)
    assert root.is_dir()
    assert listing(tmp_path, excluding=root) == before
    assert (canary / "keep").read_text() == "untouched\n"
    shutil.rmtree(root)
    assert listing(tmp_path) == before
