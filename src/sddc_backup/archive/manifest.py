"""``manifest.json`` (every member's type, size and SHA-256) and the archive's file names."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sddc_backup.archive.entries import EntryType
from sddc_backup.archive.errors import ManifestMismatchError

FORMAT_VERSION = 1
METADATA = "metadata.json"
MANIFEST = "manifest.json"
_NAME = re.compile(r"vcf-backup-(?P<host>[A-Za-z0-9-]+)-(?P<stamp>\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)\.tar\.gz")


@dataclass(frozen=True)
class ManifestMember:
    name: str
    type: EntryType
    size: int = 0
    sha256: str = ""
    target: str = ""

    def to_json(self) -> dict[str, Any]:
        if self.type is EntryType.FILE:
            return {"name": self.name, "type": "file", "size": self.size, "sha256": self.sha256}
        if self.type is EntryType.SYMLINK:
            return {"name": self.name, "type": "symlink", "target": self.target}
        return {"name": self.name, "type": "dir"}


@dataclass
class Manifest:
    members: list[ManifestMember] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"formatVersion": FORMAT_VERSION, "members": [m.to_json() for m in self.members]}

    def encode(self) -> bytes:
        """``manifest.json``'s bytes: one member per line, each with sorted keys.

        Each member goes through the C encoder on its own. An indented ``json.dumps`` of the whole
        document runs the pure-Python encoder, which holds a small string for every token of every
        member at once: for a few thousand files, megabytes more at the end of every backup.
        """
        members = ",\n".join(json.dumps(m.to_json(), sort_keys=True) for m in self.members)
        listed = f"\n{members}\n" if members else ""
        return f'{{"formatVersion": {FORMAT_VERSION}, "members": [{listed}]}}\n'.encode()

    @classmethod
    def from_json(cls, raw: Any) -> Manifest:
        try:
            return cls(
                [
                    ManifestMember(
                        name=str(m["name"]),
                        type=EntryType(m["type"]),
                        size=int(m.get("size", 0)),
                        sha256=str(m.get("sha256", "")),
                        target=str(m.get("target", "")),
                    )
                    for m in raw["members"]
                ]
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise ManifestMismatchError(f"manifest.json is not a manifest: {exc}") from exc

    def check(self, seen: list[ManifestMember]) -> None:
        """Raise ``ManifestMismatchError`` unless ``seen`` is exactly what the manifest lists."""
        listed = {m.name: m for m in self.members}
        found = {m.name: m for m in seen}
        for name, member in found.items():
            expected = listed.get(name)
            if expected is None:
                raise ManifestMismatchError(f"{name} is in the archive but not in its manifest")
            if expected != member:
                raise ManifestMismatchError(
                    f"{name} differs from the manifest: expected {_describe(expected)}, "
                    f"found {_describe(member)}"
                )
        missing = sorted(set(listed) - set(found))
        if missing:
            raise ManifestMismatchError(f"{missing[0]} is in the manifest but not in the archive")


def _describe(member: ManifestMember) -> str:
    if member.type is EntryType.FILE:
        return f"{member.size} bytes, sha256 {member.sha256}"
    if member.type is EntryType.SYMLINK:
        return f"a link to {member.target!r}"
    return "a directory"


def archive_name(fqdn: str, moment: datetime) -> str:
    """``vcf-backup-<fqdn with dots as dashes>-YYYY-MM-DD-HH-MM-SS.tar.gz``, in UTC."""
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%d-%H-%M-%S")
    return f"vcf-backup-{fqdn.replace('.', '-')}-{stamp}.tar.gz"


def base_name(file_name: str) -> str:
    """The archive's top-level folder: the file name without ``.tar.gz``."""
    return file_name.removesuffix(".tar.gz")


def parse_archive_name(file_name: str) -> datetime | None:
    """The time in a backup file name, or ``None`` if the name is not one of ours."""
    found = _NAME.fullmatch(file_name)
    if found is None:
        return None
    return datetime.strptime(found["stamp"], "%Y-%m-%d-%H-%M-%S").replace(tzinfo=UTC)


def is_backup_of(file_name: str, fqdn: str) -> bool:
    """Whether ``file_name`` is one of our backup names, for the appliance ``fqdn``."""
    found = _NAME.fullmatch(file_name)
    return found is not None and found["host"] == fqdn.replace(".", "-")


def sidecar_text(file_name: str, sha256: str) -> str:
    """The ``<file>.sha256`` content, in ``sha256sum`` format."""
    return f"{sha256}  {file_name}\n"
