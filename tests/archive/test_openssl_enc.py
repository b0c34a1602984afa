"""The OpenSSL ``enc`` container, checked against the real ``openssl`` binary in both directions.

A note on ``-S``: since OpenSSL 3.0, ``openssl enc -S <salt>`` writes no ``Salted__`` header, and
``openssl enc -d -S <salt>`` expects none (documented in openssl-enc(1), NOTES). A file with a fixed
salt is therefore the header followed by what ``openssl enc -S`` writes; without ``-S``, openssl writes
the header itself, as sddc-backup does.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
import subprocess
import tracemalloc
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sddc_backup.archive.errors import ArchiveError, CorruptArchiveError, WrongPassphraseError
from sddc_backup.archive.openssl_enc import (
    HEADER_SIZE,
    MAGIC,
    Decryptor,
    Encryptor,
    evp_bytes_to_key,
)

OPENSSL = "/usr/bin/openssl"
CIPHER_ARGS = ["-aes-256-cbc", "-md", "sha256"]
PASSPHRASE = "Correct horse-battery!9 ü".encode()
SALT = bytes.fromhex("0001020304050607")
MiB = 1 << 20

# Passphrases as openssl takes them on the command line: any bytes but NUL.
passphrases = st.binary(min_size=1, max_size=64).map(lambda p: p.replace(b"\0", b"0"))


# --- helpers -----------------------------------------------------------------------------------------


def openssl(*args: str | bytes, stdin: bytes = b"") -> bytes:
    """Runs the real openssl binary; fails the test if it fails."""
    result = subprocess.run([OPENSSL, *args], input=stdin, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def openssl_encrypt(plaintext: bytes, passphrase: bytes = PASSPHRASE) -> bytes:
    return openssl("enc", *CIPHER_ARGS, "-pass", b"pass:" + passphrase, stdin=plaintext)


def openssl_encrypt_with_salt(plaintext: bytes, salt: bytes, passphrase: bytes = PASSPHRASE) -> bytes:
    """The whole file for a fixed salt: the header, then what ``openssl enc -S`` writes (see above)."""
    body = openssl("enc", *CIPHER_ARGS, "-pass", b"pass:" + passphrase, "-S", salt.hex(), stdin=plaintext)
    assert len(body) == padded_size(len(plaintext)), "openssl -S is expected to write no header"
    return MAGIC + salt + body


def openssl_decrypt(ciphertext: bytes, *pass_args: str | bytes) -> bytes:
    return openssl(
        "enc", "-d", *CIPHER_ARGS, *(pass_args or ("-pass", b"pass:" + PASSPHRASE)), stdin=ciphertext
    )


def padded_size(plaintext_size: int) -> int:
    return (plaintext_size // 16 + 1) * 16


def split(data: bytes, points: Iterable[int]) -> list[bytes]:
    """``data`` cut at ``points`` (any order, duplicates allowed: they give empty chunks)."""
    cuts = [0, *sorted(points), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(cuts)]


def encrypt(chunks: Iterable[bytes], passphrase: bytes = PASSPHRASE, salt: bytes | None = None) -> bytes:
    encryptor = Encryptor(passphrase, salt)
    return b"".join([*(encryptor.update(chunk) for chunk in chunks), encryptor.finalize()])


def decrypt(chunks: Iterable[bytes], passphrase: bytes = PASSPHRASE) -> bytes:
    decryptor = Decryptor(passphrase)
    return b"".join([*(decryptor.update(chunk) for chunk in chunks), decryptor.finalize()])


def one_byte_chunks(data: bytes) -> Iterator[bytes]:
    return (data[i : i + 1] for i in range(len(data)))


@st.composite
def chunked(draw: st.DrawFn, max_size: int = 4096) -> tuple[bytes, list[bytes]]:
    """Random bytes, and the same bytes cut into random chunks (empty ones included)."""
    data = draw(st.binary(max_size=max_size))
    points = draw(st.lists(st.integers(0, len(data)), max_size=12))
    return data, split(data, points)


SIZES = [0, 1, 15, 16, 17, MiB + 3]


# --- 1. our files, opened by openssl -------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_openssl_decrypts_what_the_encryptor_writes(size: int) -> None:
    plaintext = random.Random(size).randbytes(size)
    ciphertext = encrypt(split(plaintext, [size // 3, size // 2]))
    assert ciphertext.startswith(MAGIC)
    assert len(ciphertext) == HEADER_SIZE + padded_size(size)
    assert openssl_decrypt(ciphertext) == plaintext


def test_openssl_decrypts_with_the_passphrase_in_a_file(tmp_path: Path) -> None:
    plaintext = random.Random(7).randbytes(100_000)
    pass_file = tmp_path / "passphrase"
    pass_file.write_bytes(PASSPHRASE + b"\n")  # openssl reads the first line
    assert openssl_decrypt(encrypt([plaintext]), "-pass", f"file:{pass_file}") == plaintext


def test_an_empty_plaintext_gives_the_header_and_one_padding_block() -> None:
    encryptor = Encryptor(PASSPHRASE, SALT)
    header = encryptor.update(b"")
    assert header == MAGIC + SALT
    assert encryptor.update(b"") == b""  # the header comes once
    tail = encryptor.finalize()
    assert len(tail) == 16
    assert openssl_decrypt(header + tail) == b""

    only_finalize = Encryptor(PASSPHRASE, SALT).finalize()
    assert only_finalize == header + tail


def test_each_file_gets_its_own_random_salt() -> None:
    salts = {encrypt([b"same"])[8:16] for _ in range(20)}
    assert len(salts) == 20


@settings(max_examples=40, deadline=None)
@given(chunked(), passphrases)
def test_openssl_decrypts_any_chunking_of_any_data(
    case: tuple[bytes, list[bytes]], passphrase: bytes
) -> None:
    plaintext, chunks = case
    assert openssl_decrypt(encrypt(chunks, passphrase), "-pass", b"pass:" + passphrase) == plaintext


# --- 2. openssl's files, opened by the decryptor -------------------------------------------------------


@pytest.fixture(scope="module")
def openssl_files() -> dict[int, tuple[bytes, bytes]]:
    """Plaintext and the file ``openssl enc`` made of it (random salt), by plaintext size."""
    files = {}
    for size in [0, 1, 15, 16, 17, 1000, 70_000]:
        plaintext = random.Random(size).randbytes(size)
        files[size] = (plaintext, openssl_encrypt(plaintext))
    return files


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 1000, 70_000])
def test_the_decryptor_reads_openssl_files_one_byte_at_a_time(
    openssl_files: dict[int, tuple[bytes, bytes]], size: int
) -> None:
    plaintext, ciphertext = openssl_files[size]
    assert ciphertext.startswith(MAGIC)
    assert decrypt(one_byte_chunks(ciphertext)) == plaintext
    assert decrypt([ciphertext]) == plaintext


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from([0, 1, 15, 16, 17, 1000, 70_000]), st.lists(st.integers(0, 70_000 + 48), max_size=20))
def test_the_decryptor_reads_openssl_files_in_any_chunking(
    openssl_files: dict[int, tuple[bytes, bytes]], size: int, points: list[int]
) -> None:
    plaintext, ciphertext = openssl_files[size]
    chunks = split(ciphertext, [min(point, len(ciphertext)) for point in points])
    assert decrypt(chunks) == plaintext


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=4096), passphrases, st.data())
def test_the_decryptor_reads_any_openssl_file_in_any_chunking(
    plaintext: bytes, passphrase: bytes, data: st.DataObject
) -> None:
    ciphertext = openssl_encrypt(plaintext, passphrase)
    points = data.draw(st.lists(st.integers(0, len(ciphertext)), max_size=12))
    assert decrypt(split(ciphertext, points), passphrase) == plaintext


@settings(max_examples=300)
@given(chunked(), st.binary(max_size=16), st.data())
def test_round_trip_in_any_chunking(
    case: tuple[bytes, list[bytes]], passphrase: bytes, data: st.DataObject
) -> None:
    plaintext, chunks = case
    ciphertext = encrypt(chunks, passphrase)
    points = data.draw(st.lists(st.integers(0, len(ciphertext)), max_size=12))
    assert decrypt(split(ciphertext, points), passphrase) == plaintext


@given(st.binary(max_size=300))
def test_the_decryptor_holds_back_only_the_last_block(plaintext: bytes) -> None:
    ciphertext = encrypt([plaintext])
    decryptor = Decryptor(PASSPHRASE)
    early = decryptor.update(ciphertext)
    assert early == plaintext[: len(ciphertext) - HEADER_SIZE - 16]
    assert early + decryptor.finalize() == plaintext


# --- 3. known answers ----------------------------------------------------------------------------------


def test_a_fixed_salt_gives_the_known_answer() -> None:
    # Computed with OpenSSL 3.0: printf hello | openssl enc -aes-256-cbc -md sha256 -pass pass:secret
    # -S 0001020304050607 | xxd -p
    assert evp_bytes_to_key(b"secret", SALT) == (
        bytes.fromhex("9407A397F39FD21FFE27F6FAA71ED3F0B2CF77F4319AD49B0C3BE4F1D8E34491"),
        bytes.fromhex("90DB0C64E023A2DC02BF53C56837D1F0"),
    )
    assert encrypt([b"hello"], b"secret", SALT) == MAGIC + SALT + bytes.fromhex(
        "1690452f3fd60fba7acf8b5a81120904"
    )


@pytest.mark.parametrize("size", SIZES)
def test_a_fixed_salt_gives_the_same_bytes_as_openssl(size: int) -> None:
    plaintext = random.Random(size).randbytes(size)
    expected = openssl_encrypt_with_salt(plaintext, SALT)
    assert encrypt([plaintext], salt=SALT) == expected
    assert decrypt([expected]) == plaintext


def openssl_key_and_iv(passphrase: bytes, salt: bytes) -> tuple[bytes, bytes]:
    output = openssl("enc", *CIPHER_ARGS, "-P", "-S", salt.hex(), "-pass", b"pass:" + passphrase).decode()
    key = re.search(r"^key\s*=\s*([0-9A-F]{64})$", output, re.MULTILINE)
    iv = re.search(r"^iv\s*=\s*([0-9A-F]{32})$", output, re.MULTILINE)
    assert key is not None, output
    assert iv is not None, output
    return bytes.fromhex(key.group(1)), bytes.fromhex(iv.group(1))


@settings(max_examples=40, deadline=None)
@given(passphrases, st.binary(min_size=8, max_size=8))
def test_evp_bytes_to_key_matches_openssl(passphrase: bytes, salt: bytes) -> None:
    assert evp_bytes_to_key(passphrase, salt) == openssl_key_and_iv(passphrase, salt)


def test_evp_bytes_to_key_matches_openssl_for_the_empty_passphrase() -> None:
    assert evp_bytes_to_key(b"", SALT) == openssl_key_and_iv(b"", SALT)


@pytest.mark.parametrize("salt", [b"", b"1234567", b"123456789"])
def test_evp_bytes_to_key_takes_an_8_byte_salt_only(salt: bytes) -> None:
    with pytest.raises(ValueError, match="8 bytes"):
        evp_bytes_to_key(PASSPHRASE, salt)


# --- 4. wrong passphrase -------------------------------------------------------------------------------


def test_a_wrong_passphrase_is_almost_always_detected_by_the_padding() -> None:
    """Over 200 wrong passphrases, nearly all raise ``WrongPassphraseError``, and none gives the data.

    It cannot be all: a wrong key decrypts the last block to random bytes, and random bytes end in valid
    PKCS#7 padding (…01, …02 02, …) with a probability of about 1/255. Such a file "decrypts" to garbage
    without an error here; this is why the archive reader also checks the gzip magic of the first block.
    """
    rng = random.Random(20261127)
    wrong = 0
    for _ in range(200):
        plaintext = rng.randbytes(rng.randrange(0, 300))
        ciphertext = encrypt([plaintext], b"right passphrase")
        try:
            result = decrypt([ciphertext], rng.randbytes(rng.randrange(1, 30)))
        except WrongPassphraseError as error:
            assert "wrong passphrase, or a damaged file" in error.message
            wrong += 1
        else:
            assert result != plaintext
    assert wrong >= 190


def test_a_wrong_passphrase_can_pass_the_padding_check() -> None:
    """The limitation above, shown: some wrong passphrase yields valid padding and garbage output."""
    plaintext = b"\x1f\x8b\x08 a gzip stream, say" * 3
    ciphertext = encrypt([plaintext], b"right passphrase", SALT)
    for attempt in range(5000):
        try:
            garbage = decrypt([ciphertext], f"wrong {attempt}".encode())
        except WrongPassphraseError:
            continue
        assert garbage != plaintext
        assert not garbage.startswith(b"\x1f\x8b\x08")
        return
    pytest.fail("no wrong passphrase out of 5000 gave valid padding; expected about 20")


@settings(max_examples=200)
@given(st.binary(max_size=200), st.binary(max_size=20), st.binary(max_size=20))
def test_a_wrong_passphrase_never_returns_the_plaintext(plaintext: bytes, right: bytes, wrong: bytes) -> None:
    if right == wrong:
        wrong += b"!"
    ciphertext = encrypt([plaintext], right)
    try:
        result = decrypt([ciphertext], wrong)
    except WrongPassphraseError:
        return
    assert result != plaintext


# --- 5. truncation and foreign files -------------------------------------------------------------------

TEXT = b"All work and no play makes Jack a dull boy. " * 3  # 132 bytes: 9 blocks padded


def test_a_file_missing_its_last_byte_is_truncated() -> None:
    ciphertext = encrypt([TEXT])
    decryptor = Decryptor(PASSPHRASE)
    decryptor.update(ciphertext[:-1])
    with pytest.raises(CorruptArchiveError, match=r"truncated.*not a whole number"):
        decryptor.finalize()


def test_a_file_cut_at_a_block_boundary_looks_like_a_wrong_passphrase() -> None:
    """Cut after a whole block, the last block left is data, not padding: the padding is invalid.

    Nothing in the container tells this from a wrong passphrase, so the error is
    ``WrongPassphraseError``, whose message names both causes. (Were the last byte of that block
    0x01, the cut would pass unnoticed here; the gzip and manifest checks catch it.)
    """
    ciphertext = encrypt([TEXT])
    with pytest.raises(WrongPassphraseError, match="wrong passphrase, or a damaged file"):
        decrypt([ciphertext[:-16]])


def test_a_file_with_only_the_header_is_truncated() -> None:
    with pytest.raises(CorruptArchiveError, match=r"truncated.*no encrypted data"):
        decrypt([encrypt([TEXT])[:HEADER_SIZE]])


@pytest.mark.parametrize("size", [0, 1, 8, 15])
def test_a_file_cut_inside_the_header_is_truncated(size: int) -> None:
    with pytest.raises(CorruptArchiveError, match=rf"truncated.*after {size} bytes"):
        decrypt(one_byte_chunks(encrypt([TEXT])[:size]))


@given(st.binary(max_size=100).map(lambda b: bytes(0x20 + x % 0xDF for x in b)), st.data())
def test_every_cut_raises_and_says_what(plaintext: bytes, data: st.DataObject) -> None:
    """A plaintext of bytes >= 0x20: any block-aligned cut leaves a last byte that is not padding."""
    cut = encrypt([plaintext])
    cut = cut[: data.draw(st.integers(0, len(cut) - 1))]
    chunk_size = data.draw(st.integers(1, 64))
    chunks = [cut[i : i + chunk_size] for i in range(0, len(cut), chunk_size)]
    expected: type[ArchiveError]
    if len(cut) <= HEADER_SIZE:
        expected, message = CorruptArchiveError, "truncated"
    elif (len(cut) - HEADER_SIZE) % 16:
        expected, message = CorruptArchiveError, "truncated.*not a whole number"
    else:
        expected, message = WrongPassphraseError, "wrong passphrase, or a damaged file"
    with pytest.raises(expected, match=message):
        decrypt(chunks)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"\x1f\x8b\x08\x00" + bytes(40), id="gzip"),
        pytest.param(b"salted__" + bytes(40), id="lower-case"),
        pytest.param(b"x", id="one-byte"),
    ],
)
def test_a_file_not_starting_with_salted_is_refused_at_once(content: bytes) -> None:
    decryptor = Decryptor(PASSPHRASE)
    with pytest.raises(CorruptArchiveError, match="not an OpenSSL-encrypted file"):
        decryptor.update(content)


def test_the_header_is_refused_at_the_first_wrong_byte() -> None:
    decryptor = Decryptor(PASSPHRASE)
    for byte in one_byte_chunks(b"Salted"):
        assert decryptor.update(byte) == b""
    with pytest.raises(CorruptArchiveError, match="not an OpenSSL-encrypted file"):
        decryptor.update(b"!")


def test_finalize_ends_the_stream() -> None:
    encryptor = Encryptor(PASSPHRASE)
    encryptor.finalize()
    with pytest.raises(ValueError, match="finalized"):
        encryptor.update(b"more")
    decryptor = Decryptor(PASSPHRASE)
    assert decryptor.update(encrypt([TEXT])) + decryptor.finalize() == TEXT
    with pytest.raises(ValueError, match="finalized"):
        decryptor.update(b"more")
    with pytest.raises(ValueError, match="finalized"):
        decryptor.finalize()


def test_a_large_chunk_is_transformed_in_slices_with_bounded_buffers() -> None:
    """One ``update`` of 9 MiB: the same bytes as openssl, and no buffer beyond a 4 MiB slice."""
    plaintext = random.Random(9).randbytes(9 * MiB + 5)
    expected = openssl_encrypt_with_salt(plaintext, SALT)
    encryptor = Encryptor(PASSPHRASE, SALT)
    ciphertext = encryptor.update(plaintext)
    assert len(encryptor._buffer) <= 4 * MiB + 16
    assert ciphertext + encryptor.finalize() == expected
    decryptor = Decryptor(PASSPHRASE)
    early = decryptor.update(expected)
    assert len(decryptor._buffer) <= 4 * MiB + 32
    assert early + decryptor.finalize() == plaintext


# --- 6. memory -----------------------------------------------------------------------------------------


def test_memory_does_not_grow_with_the_size_of_the_stream() -> None:
    """64 MiB through both directions in 1 MiB chunks: one block held back, buffers bounded, peak < 8 MiB."""
    chunk = random.Random(64).randbytes(MiB)
    encryptor = Encryptor(PASSPHRASE)
    decryptor = Decryptor(PASSPHRASE)
    plain_digest, out_digest = hashlib.sha256(), hashlib.sha256()
    tracemalloc.start()
    try:
        for i in range(64):
            data = chunk[i:] + chunk[:i]  # each chunk different
            plain_digest.update(data)
            out_digest.update(decryptor.update(encryptor.update(data)))
            del data
            assert decryptor._held == 16  # the one block held back
            assert len(decryptor._header) == HEADER_SIZE
            assert len(encryptor._buffer) <= MiB + 16  # reused output space: one chunk's worth
            assert len(decryptor._buffer) <= MiB + 32
        out_digest.update(decryptor.update(encryptor.finalize()))
        out_digest.update(decryptor.finalize())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out_digest.digest() == plain_digest.digest()
    assert peak < 8 * MiB
