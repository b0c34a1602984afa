"""What a restore swaps, worked out from an extracted backup and this appliance's layout.

A restore puts back exactly what this appliance is configured to protect (``SDDC_BACKUP_PATHS``,
``SDDC_BACKUP_SQLITE_PATHS``, ``SDDC_BACKUP_POSTGRES_DSN``). A backup that lacks one of them, or holds
parts that this appliance does not protect, was taken on a differently configured appliance: the
restore refuses it before anything is touched, and says what differs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sddc_backup.domain.errors import SddcBackupError
from sddc_backup.domain.restore import DatabaseSwap, PathSwap
from sddc_backup.services.appliance import ApplianceLayout
from sddc_backup.services.components import paths as files_component
from sddc_backup.services.components import sqlite as sqlite_component
from sddc_backup.services.components.postgres import MEMBER as DUMP_MEMBER
from sddc_backup.services.restore.files import plan_path


class LayoutMismatchError(SddcBackupError):
    error_code = "RESTORE_LAYOUT_MISMATCH"
    http_status = 400
    remediation = (
        "Configure this appliance as the one that took the backup was (SDDC_BACKUP_PATHS, "
        "SDDC_BACKUP_SQLITE_PATHS, SDDC_BACKUP_POSTGRES_DSN), restart it, and start the restore again."
    )


@dataclass
class StagedFile:
    """A swap and the extracted content that goes into it (``None`` for a file only moved aside)."""

    swap: PathSwap
    extracted: Path | None
    kind: str  # "path" or "sqlite"


@dataclass
class RestorePlan:
    files: list[StagedFile] = field(default_factory=list)
    dump: Path | None = None
    database: DatabaseSwap | None = None


def file_roots(layout: ApplianceLayout) -> list[Path]:
    """The configured roots, without those inside another configured root (they come with it)."""
    roots = [Path(p) for p in layout.paths]
    return [r for r in roots if not any(parent in roots for parent in r.parents)]


def plan_files(layout: ApplianceLayout, staging: Path, restore_id: str) -> list[StagedFile]:
    """The file, directory and SQLite swaps; ``LayoutMismatchError`` when the backup does not fit."""
    problems: list[str] = []
    staged: list[StagedFile] = []
    roots = file_roots(layout)
    for root in roots:
        extracted = staging / files_component.member_name(root)
        if not os.path.lexists(extracted):
            problems.append(f"the backup has no copy of {root}")
        staged.append(StagedFile(plan_path(root, True, restore_id), extracted, "path"))
    problems += [
        f"the backup holds {p}, which this appliance does not protect" for p in _extra(staging, roots)
    ]
    sqlite_dir = staging / sqlite_component.MEMBER_PREFIX
    expected = set()
    for index, path in enumerate(layout.sqlite_paths):
        member = staging / sqlite_component.member_name(index, Path(path))
        expected.add(member.name)
        if not member.is_file():
            problems.append(f"the backup has no copy of the SQLite database {path} (at position {index})")
        for suffix in ("-wal", "-shm", "-journal"):  # SQLite would apply them to the restored file
            side = Path(str(path) + suffix)
            staged.append(StagedFile(plan_path(side, False, restore_id), None, "sqlite"))
        staged.append(StagedFile(plan_path(Path(path), True, restore_id), member, "sqlite"))
    if sqlite_dir.is_dir():
        problems += [
            f"the backup holds the SQLite database {n}, which this appliance does not protect"
            for n in sorted(p.name for p in sqlite_dir.iterdir())
            if n not in expected
        ]
    dump = staging / DUMP_MEMBER
    if layout.postgres_dsn and not dump.is_file():
        problems.append("the backup has no PostgreSQL dump, and this appliance protects a database")
    if not layout.postgres_dsn and os.path.lexists(dump):
        problems.append("the backup holds a PostgreSQL dump, and this appliance protects no database")
    if problems:
        raise LayoutMismatchError("The backup does not match this appliance: " + "; ".join(problems) + ".")
    return staged


def _extra(staging: Path, roots: list[Path]) -> list[str]:
    """Paths under ``files/`` that are neither a configured root, nor inside one, nor above one."""
    base = staging / files_component.MEMBER_PREFIX
    if not base.is_dir():
        return []
    wanted = {PurePosixPath(r) for r in roots}
    above = {parent for r in wanted for parent in r.parents}
    extra: list[str] = []
    for directory, subdirs, names in os.walk(base):
        live_dir = PurePosixPath("/") / PurePosixPath(directory).relative_to(base)
        for name in [*subdirs, *names]:
            live = live_dir / name
            if live in wanted:
                continue
            if live in above and name in subdirs:
                continue
            extra.append(str(live))
        subdirs[:] = [d for d in subdirs if live_dir / d in above and live_dir / d not in wanted]
    return sorted(extra)
