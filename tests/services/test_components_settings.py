"""The service's own pre-rendered files as archive members, and their canonical JSON."""

from __future__ import annotations

import hashlib
import json

import pytest

from sddc_backup.archive.entries import EntryType
from sddc_backup.services.components.settings import SSH_KNOWN_HOSTS, USERS, StaticFilesComponent, render_json


def test_render_json_is_sorted_indented_utf8_with_a_trailing_newline() -> None:
    rendered = render_json({"b": 1, "a": {"z": "Zürich", "y": [1, 2]}})
    assert (
        rendered
        == (
            '{\n  "a": {\n    "y": [\n      1,\n      2\n    ],\n    "z": "Zürich"\n  },\n  "b": 1\n}\n'
        ).encode()
    )
    assert json.loads(rendered) == {"b": 1, "a": {"z": "Zürich", "y": [1, 2]}}


def test_render_json_refuses_values_json_cannot_hold() -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        render_json({"x": float("nan")})


def test_files_become_private_file_entries_in_the_given_order() -> None:
    files = {USERS: render_json({"users": []}), SSH_KNOWN_HOSTS: render_json({"knownHosts": []})}
    component = StaticFilesComponent("settings", files, mtime=1_764_230_400.5)
    entries = list(component.entries())
    assert component.name == "settings"
    assert [e.name for e in entries] == [USERS, SSH_KNOWN_HOSTS]
    for entry, data in zip(entries, files.values(), strict=True):
        assert (entry.type, entry.mode, entry.mtime, entry.size) == (
            EntryType.FILE,
            0o600,
            1_764_230_400.5,
            len(data),
        )
        assert entry.expected_sha256 == hashlib.sha256(data).hexdigest()
        assert entry.open is not None
        with entry.open() as handle:
            assert handle.read() == data
        with entry.open() as handle:  # each open starts at the beginning
            assert handle.read() == data


@pytest.mark.parametrize("name", ["", "/etc/passwd", "../escape.json", "a/../../b", "a\\b"])
def test_member_names_must_stay_inside_the_archive_folder(name: str) -> None:
    with pytest.raises(ValueError, match="not a relative member name"):
        StaticFilesComponent("settings", {name: b"{}"}, mtime=0.0)
