"""The OpenSSL ``enc`` container, the outermost layer of an archive, as a stream.

What ``openssl enc -aes-256-cbc -md sha256`` (without ``-pbkdf2``) writes and reads: the 8 bytes
``Salted__``, an 8-byte salt, then AES-256-CBC ciphertext with PKCS#7 padding. Key and IV come from
OpenSSL's ``EVP_BytesToKey`` with SHA-256 and one iteration over the passphrase and the salt.

Both directions stream: each ``update`` returns what can be produced so far. Besides a block held back
or not yet complete, each object keeps only an output buffer that it reuses, as large as the largest
chunk given and never more than 4 MiB, whatever the size of the stream.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from sddc_backup.archive.errors import CorruptArchiveError, WrongPassphraseError

MAGIC = b"Salted__"
_SALT_SIZE = 8
HEADER_SIZE = len(MAGIC) + _SALT_SIZE  # 16
_KEY_SIZE = 32
_IV_SIZE = 16
_BLOCK_SIZE = 16


def evp_bytes_to_key(passphrase: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """The (32-byte key, 16-byte IV) that ``openssl enc -aes-256-cbc -md sha256 -S <salt>`` derives.

    OpenSSL's ``EVP_BytesToKey`` with SHA-256 and one iteration: D_1 = SHA256(passphrase || salt),
    D_i = SHA256(D_{i-1} || passphrase || salt), concatenated until there are 48 bytes.
    """
    if len(salt) != _SALT_SIZE:
        raise ValueError(f"the salt must be {_SALT_SIZE} bytes, not {len(salt)}")
    derived = b""
    block = b""
    while len(derived) < _KEY_SIZE + _IV_SIZE:
        block = hashlib.sha256(block + passphrase + salt).digest()
        derived += block
    return derived[:_KEY_SIZE], derived[_KEY_SIZE : _KEY_SIZE + _IV_SIZE]


def _cipher(passphrase: bytes, salt: bytes) -> Cipher[modes.CBC]:
    key, iv = evp_bytes_to_key(passphrase, salt)
    return Cipher(algorithms.AES(key), modes.CBC(iv))


# Input is transformed at most this much at a time, into a buffer that each object reuses: the buffer
# never grows beyond it, and reusing it (``update_into``) instead of allocating fresh output for every
# chunk makes decryption several times faster and encryption about 1.7 times.
_SLICE_SIZE = 4 << 20


def _slices(data: bytes | memoryview) -> Iterator[memoryview]:
    view = memoryview(data)
    for start in range(0, len(view), _SLICE_SIZE):
        yield view[start : start + _SLICE_SIZE]


class Encryptor:
    """Turns a plaintext stream into an OpenSSL ``enc`` file.

    The concatenation of every ``update`` result and the ``finalize`` result is the whole file: the
    header comes with the first call (even an ``update(b"")``, or ``finalize`` when nothing else was
    called), so an empty plaintext gives a valid 32-byte file. ``salt`` is for tests and known-answer
    checks; by default every file gets a fresh random salt.
    """

    def __init__(self, passphrase: bytes, salt: bytes | None = None) -> None:
        if salt is None:
            salt = secrets.token_bytes(_SALT_SIZE)
        self._header: bytes = MAGIC + salt  # cleared once returned
        self._encryptor: CipherContext = _cipher(passphrase, salt).encryptor()
        self._plaintext_size = 0
        self._buffer = bytearray()  # reused output space, at most _SLICE_SIZE + _BLOCK_SIZE bytes
        self._finalized = False

    def update(self, data: bytes) -> bytes:
        """The next bytes of the file: the header first, then every ciphertext block now complete."""
        if self._finalized:
            raise ValueError("the encryptor is already finalized")
        self._plaintext_size += len(data)
        pieces = [self._header] if self._header else []
        self._header = b""
        for piece in _slices(data):
            if len(self._buffer) < len(piece) + _BLOCK_SIZE:
                self._buffer = bytearray(len(piece) + _BLOCK_SIZE)
            with memoryview(self._buffer) as out:
                size = self._encryptor.update_into(piece, out)
                pieces.append(bytes(out[:size]))
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def finalize(self) -> bytes:
        """The last bytes of the file: the final, padded block (after the header if not yet given)."""
        if self._finalized:
            raise ValueError("the encryptor is already finalized")
        self._finalized = True
        self._buffer = bytearray()
        # PKCS#7: 1 to 16 bytes, each the number of bytes added. The encryptor holds the partial block.
        pad = _BLOCK_SIZE - self._plaintext_size % _BLOCK_SIZE
        tail = self._encryptor.update(bytes([pad]) * pad) + self._encryptor.finalize()
        tail = self._header + tail
        self._header = b""
        return tail


class Decryptor:
    """Turns an OpenSSL ``enc`` file, in chunks of any size, back into the plaintext.

    ``update`` consumes the 16-byte header first and raises ``CorruptArchiveError`` as soon as the
    bytes seen cannot begin ``Salted__``. It always holds back the last complete plaintext block,
    which carries the padding; ``finalize`` checks and removes that padding and returns the rest.

    A wrong passphrase shows only as invalid padding (``WrongPassphraseError``), and about one wrong
    key in 256 happens to produce valid padding and is not detected here: callers that must recognise a
    wrong passphrase check the content as well (the archive reader checks the gzip magic of the first
    block). Likewise, a file cut exactly at a block boundary is indistinguishable from a wrong
    passphrase, and is reported as such.
    """

    def __init__(self, passphrase: bytes) -> None:
        self._passphrase = passphrase
        self._header = bytearray()  # up to HEADER_SIZE bytes, until the header is complete
        self._decryptor: CipherContext | None = None
        self._ciphertext_size = 0
        # Reused output space, at most _SLICE_SIZE + 2 * _BLOCK_SIZE bytes. Its first ``_held`` bytes
        # (0, or a block once there was one) are the last plaintext block seen, held back.
        self._buffer = bytearray(2 * _BLOCK_SIZE)
        self._held = 0
        self._finalized = False

    def update(self, data: bytes) -> bytes:
        """The plaintext that is certain so far: everything except the last complete block."""
        if self._finalized:
            raise ValueError("the decryptor is already finalized")
        ciphertext: bytes | memoryview = data
        if self._decryptor is None:
            ciphertext = self._consume_header(data)
            if self._decryptor is None:
                return b""
        self._ciphertext_size += len(ciphertext)
        decryptor = self._decryptor
        pieces = [self._decrypt(decryptor, piece) for piece in _slices(ciphertext)]
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def finalize(self) -> bytes:
        """The last plaintext bytes, without the padding.

        Raises ``CorruptArchiveError`` when the file is truncated (no complete header, no ciphertext, or
        a ciphertext that is not a whole number of blocks), ``WrongPassphraseError`` when the padding is
        invalid.
        """
        if self._finalized:
            raise ValueError("the decryptor is already finalized")
        self._finalized = True
        last_block = bytes(self._buffer[: self._held])
        self._buffer = bytearray()
        if self._decryptor is None:
            raise CorruptArchiveError(
                f"The encrypted file is truncated: it ends after {len(self._header)} bytes, "
                f"inside the {HEADER_SIZE}-byte OpenSSL header."
            )
        if self._ciphertext_size == 0:
            raise CorruptArchiveError(
                "The encrypted file is truncated: it holds the OpenSSL header but no encrypted data."
            )
        if self._ciphertext_size % _BLOCK_SIZE:
            raise CorruptArchiveError(
                f"The encrypted file is truncated: its encrypted data is {self._ciphertext_size} bytes, "
                f"not a whole number of {_BLOCK_SIZE}-byte blocks."
            )
        last_block += self._decryptor.finalize()  # adds nothing: no partial block is left
        unpadder = padding.PKCS7(_BLOCK_SIZE * 8).unpadder()
        try:
            return unpadder.update(last_block) + unpadder.finalize()
        except ValueError:
            raise WrongPassphraseError(
                "The archive cannot be decrypted: its padding is invalid after decryption. "
                "This means a wrong passphrase, or a damaged file."
            ) from None

    def _decrypt(self, decryptor: CipherContext, ciphertext: memoryview) -> bytes:
        """Decrypts behind the held-back block; returns all but the (new) last complete block."""
        needed = 2 * _BLOCK_SIZE + len(ciphertext)
        if len(self._buffer) < needed:
            grown = bytearray(needed)
            grown[: self._held] = self._buffer[: self._held]
            self._buffer = grown
        with memoryview(self._buffer) as out:
            size = self._held + decryptor.update_into(ciphertext, out[self._held :])
            if size == self._held:  # no complete block yet
                return b""
            # CBC decryption yields whole blocks, so ``size`` is a multiple of _BLOCK_SIZE.
            released = bytes(out[: size - _BLOCK_SIZE])
            out[:_BLOCK_SIZE] = out[size - _BLOCK_SIZE : size]
        self._held = _BLOCK_SIZE
        return released

    def _consume_header(self, data: bytes) -> memoryview:
        """Takes header bytes from ``data``; returns what follows the header, if it is complete."""
        needed = HEADER_SIZE - len(self._header)
        self._header += data[:needed]
        seen = min(len(self._header), len(MAGIC))
        if self._header[:seen] != MAGIC[:seen]:
            raise CorruptArchiveError(
                "This is not an OpenSSL-encrypted file: it does not start with 'Salted__' "
                "(the header that 'openssl enc' writes)."
            )
        if len(self._header) < HEADER_SIZE:
            return memoryview(b"")
        salt = bytes(self._header[len(MAGIC) :])
        self._decryptor = _cipher(self._passphrase, salt).decryptor()
        return memoryview(data)[needed:]  # no copy of a large first chunk
