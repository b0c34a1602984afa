"""An extracted backup folder, archived again: what ``archive encrypt FOLDER`` uses after an operator
patched a file in a decrypted backup (as VCF's recovery tooling does with its known-hosts file)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from sddc_backup.archive.entries import Entry
from sddc_backup.archive.errors import CorruptArchiveError
from sddc_backup.archive.manifest import MANIFEST, METADATA
from sddc_backup.services.components.paths import PathsComponent, member_name


class DirectoryComponent:
    """Every member under ``folder``, named relative to it; its own metadata and manifest are left
    out, because the writer writes them anew."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder.resolve()
        self._paths = PathsComponent([self._folder], name=folder.name)

    @property
    def name(self) -> str:
        return self._paths.name

    def entries(self) -> Iterator[Entry]:
        prefix = member_name(self._folder) + "/"
        for entry in self._paths.entries():
            if not entry.name.startswith(prefix):
                continue  # the folder itself
            relative = entry.name.removeprefix(prefix)
            if relative in (METADATA, MANIFEST):
                continue
            yield replace(entry, name=relative)

    @staticmethod
    def metadata_of(folder: Path) -> dict[str, Any]:
        """The folder's ``metadata.json``, or a minimal one for a folder that never had it."""
        path = folder / METADATA
        if not path.exists():
            return {"formatVersion": 1, "product": "sddc-backup", "note": "archived from a folder"}
        try:
            document = json.loads(path.read_text())
        except ValueError as exc:
            raise CorruptArchiveError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise CorruptArchiveError(f"{path} is not a JSON object.")
        return document
