"""``sddc-backup serve --check-config``: check a configuration without starting the server.

Every check runs, and each says what it looked at; the command fails if any failed. Nothing is created
or changed, except that the PostgreSQL check opens (and closes) one connection.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sddc_backup.app.settings import Settings
from sddc_backup.domain.errors import SddcBackupError
from sddc_backup.domain.faults import FaultPlan
from sddc_backup.services.components._pg import PgTarget, find_tool


@dataclass(frozen=True)
class ConfigCheck:
    what: str
    ok: bool
    detail: str


def check_settings(settings: Settings) -> list[ConfigCheck]:
    return [c for check in _CHECKS for c in check(settings)]


def _data_dir(settings: Settings) -> Iterator[ConfigCheck]:
    path = settings.data_dir.resolve()
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    ok = existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)
    detail = f"{path} ({'exists' if existing == path else f'will be created under {existing}'})"
    yield ConfigCheck("data directory is writable", ok, detail)


def _tls(settings: Settings) -> Iterator[ConfigCheck]:
    if not (settings.tls_cert or settings.tls_key):
        yield ConfigCheck("TLS certificate", True, "a self-signed one is generated on the first start")
        return
    if not (settings.tls_cert and settings.tls_key):
        yield ConfigCheck(
            "TLS certificate", False, "SDDC_BACKUP_TLS_CERT and SDDC_BACKUP_TLS_KEY go together"
        )
        return
    try:
        cert = x509.load_pem_x509_certificate(settings.tls_cert.read_bytes())
        key = serialization.load_pem_private_key(settings.tls_key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        yield ConfigCheck("TLS certificate", False, f"cannot be read: {exc}")
        return
    matches = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    yield ConfigCheck(
        "TLS certificate matches its key",
        matches,
        f"{settings.tls_cert} (subject {cert.subject.rfc4514_string()})",
    )


def _paths(settings: Settings) -> Iterator[ConfigCheck]:
    for path in settings.paths:
        yield ConfigCheck("protected path exists", path.is_absolute() and os.path.lexists(path), str(path))
    for path in settings.sqlite_paths:
        yield ConfigCheck("SQLite database exists", path.is_absolute() and path.is_file(), str(path))
    made_at_start = settings.data_dir.resolve() / "restore"
    for path in settings.allowed_restore_dirs:
        if path.resolve() == made_at_start and not path.exists():
            yield ConfigCheck("restore directory exists", True, f"{path} (created on the first start)")
        else:
            yield ConfigCheck("restore directory exists", path.is_dir(), str(path))


def _postgres(settings: Settings) -> Iterator[ConfigCheck]:
    if settings.postgres_dsn is None:
        return
    try:
        target = PgTarget.parse(settings.postgres_dsn.get_secret_value(), "postgres")
        with target.connect() as conn:
            conn.execute("SELECT 1")
        yield ConfigCheck("PostgreSQL database answers", True, target.display)
    except psycopg.Error as exc:
        yield ConfigCheck("PostgreSQL database answers", False, str(exc).strip().splitlines()[0])
    except Exception as exc:  # noqa: BLE001 - ComponentFailedError for a malformed DSN, say
        yield ConfigCheck("PostgreSQL database answers", False, str(exc))
    for tool in ("pg_dump", "psql"):
        try:
            yield ConfigCheck(f"{tool} is installed", True, str(find_tool(tool, None, "postgres")))
        except SddcBackupError as exc:
            yield ConfigCheck(f"{tool} is installed", False, exc.message)


def _faults(settings: Settings) -> Iterator[ConfigCheck]:
    plan = FaultPlan.parse(settings.faults)  # raises INVALID_SETTING for a malformed plan
    yield ConfigCheck("no fault injection", not plan.actions, "SDDC_BACKUP_FAULTS is for tests only")


_CHECKS: tuple[Callable[[Settings], Iterator[ConfigCheck]], ...] = (
    _data_dir,
    _tls,
    _paths,
    _postgres,
    _faults,
)
