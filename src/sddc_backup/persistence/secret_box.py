"""Encryption of secrets at rest (passwords, passphrases) with a key kept in the data directory.

The key is 32 random bytes in a file of mode 0600, created once. Each secret is sealed with AES-256-GCM
under a fresh 96-bit nonce; the sealed form is ``v1.`` + URL-safe base64 of nonce and ciphertext, so it
fits any text column and a future key or algorithm change can be told apart by its prefix.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sddc_backup.domain.errors import InternalError
from sddc_backup.persistence.key_files import read_or_create_key

_PREFIX = "v1."
_ASSOCIATED = b"sddc-backup secret v1"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a secret key is 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_key_file(cls, path: Path) -> SecretBox:
        """The box for the key in ``path``, creating the key if the file does not exist yet."""
        return cls(read_or_create_key(path))

    def seal(self, plaintext: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), _ASSOCIATED)
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, token: str) -> str:
        if not token.startswith(_PREFIX):
            raise InternalError("a stored secret has an unknown format", error_code="SECRET_UNREADABLE")
        try:
            raw = base64.urlsafe_b64decode(token[len(_PREFIX) :])
            return self._aead.decrypt(raw[:12], raw[12:], _ASSOCIATED).decode()
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise InternalError(
                "a stored secret cannot be decrypted with this data directory's key",
                error_code="SECRET_UNREADABLE",
                remediation="The data directory's secret.key was replaced. Restore it from a copy of the "
                "data directory; otherwise set the password and passphrase again.",
            ) from exc
