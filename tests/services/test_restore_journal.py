"""The restore journal on disk, its JSON form, and the restore-style status labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sddc_backup.domain.errors import InternalError
from sddc_backup.domain.restore import (
    DatabaseSwap,
    PathSwap,
    RestoreJournal,
    restore_status_label,
)
from sddc_backup.domain.tasks import StepStatus, TaskStatus
from sddc_backup.services.restore.journal import JournalFile

RESTORE_ID = "3f1c9a7e-5b2d-4c8e-9f10-2a6b7c8d9e0f"


def journal(**changes: object) -> RestoreJournal:
    fields: dict[str, object] = {
        "restore_id": RESTORE_ID,
        "staging": f"/var/lib/sddc-backup/restore-staging/{RESTORE_ID}",
        "services_stopped": True,
        "paths": [
            PathSwap(
                "/etc/app", "/etc/.app.sddc-restore-new-3f1c9a7e", "/etc/.app.sddc-restore-old-3f1c9a7e", True
            ),
            PathSwap(
                "/var/lib/app/i.db-wal", None, "/var/lib/app/.i.db-wal.sddc-restore-old-3f1c9a7e", False
            ),
        ],
        "database": DatabaseSwap("appdb", "appdb_restore_3f1c9a7e", "appdb_old_3f1c9a7e", had_live=True),
    }
    fields.update(changes)
    return RestoreJournal(**fields)  # type: ignore[arg-type]


@pytest.fixture
def journal_file(tmp_path: Path) -> JournalFile:
    return JournalFile(tmp_path / "restore-journal.json")


def test_the_dict_form_round_trips_and_carries_a_format_version() -> None:
    for original in (journal(), journal(paths=[], database=None, services_stopped=False)):
        raw = original.to_dict()
        assert raw["formatVersion"] == 1
        assert RestoreJournal.from_dict(json.loads(json.dumps(raw))) == original


def test_from_dict_fills_the_optional_fields() -> None:
    assert RestoreJournal.from_dict({"restore_id": "r", "staging": "/s"}) == RestoreJournal("r", "/s")


@pytest.mark.parametrize(
    "raw",
    [
        {"staging": "/s"},
        {"restore_id": "r"},
        {"restore_id": "r", "staging": "/s", "paths": [{"target": "/x"}]},
        {
            "restore_id": "r",
            "staging": "/s",
            "paths": [{"target": "/x", "staged": None, "old": "/o", "had_live": True, "extra": 1}],
        },
        {"restore_id": "r", "staging": "/s", "database": {"database": "d"}},
        {"restore_id": "r", "staging": "/s", "paths": [1]},
    ],
)
def test_from_dict_rejects_what_is_not_a_journal_with_value_error(raw: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="not a restore journal"):
        RestoreJournal.from_dict(raw)


def test_save_then_load_round_trips_with_mode_0600_and_no_temporary_left(
    journal_file: JournalFile, tmp_path: Path
) -> None:
    assert journal_file.load() is None
    journal_file.save(journal())
    assert journal_file.load() == journal()
    assert journal_file.path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["restore-journal.json"]
    assert json.loads(journal_file.path.read_text())["formatVersion"] == 1


def test_save_replaces_the_journal_by_rename_and_a_leftover_temporary_does_not_matter(
    journal_file: JournalFile, tmp_path: Path
) -> None:
    journal_file.save(journal(paths=[]))
    first_inode = journal_file.path.stat().st_ino
    temporary = tmp_path / "restore-journal.json.tmp"
    temporary.write_text('{"restore_id": "half written')  # a crash in the middle of an earlier save
    assert journal_file.load() == journal(paths=[])
    journal_file.save(journal())
    assert journal_file.path.stat().st_ino != first_inode  # a new file renamed over, not rewritten in place
    assert journal_file.load() == journal()
    assert [p.name for p in tmp_path.iterdir()] == ["restore-journal.json"]


def test_remove_forgets_the_journal_and_may_run_twice(journal_file: JournalFile, tmp_path: Path) -> None:
    journal_file.save(journal())
    journal_file.remove()
    journal_file.remove()
    assert journal_file.load() is None
    assert [p.name for p in tmp_path.iterdir()] == []


def unreadable(journal_file: JournalFile) -> InternalError:
    with pytest.raises(InternalError) as caught:
        journal_file.load()
    assert caught.value.error_code == "RESTORE_JOURNAL_UNREADABLE"
    assert str(journal_file.path) in caught.value.message
    return caught.value


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b'{"restore_id": "r", "staging"', b"\xff\xfe\x00garbage", b'{"restore_id": "r"}'],
    ids=["empty", "not-json", "cut-short", "not-utf8", "not-a-journal"],
)
def test_a_garbled_journal_is_unreadable(journal_file: JournalFile, content: bytes) -> None:
    journal_file.path.write_bytes(content)
    unreadable(journal_file)


@pytest.mark.parametrize("content", [b"[]", b"null", b"42", b'"journal"'])
def test_a_journal_that_is_json_but_not_an_object_is_unreadable(
    journal_file: JournalFile, content: bytes
) -> None:
    journal_file.path.write_bytes(content)
    unreadable(journal_file)


def test_a_journal_that_cannot_be_read_is_unreadable_and_says_how_to_recover(
    journal_file: JournalFile,
) -> None:
    journal_file.path.mkdir()  # read_text fails with an OSError
    error = unreadable(journal_file)
    assert "sddc-restore-old" in error.remediation


def test_restore_status_labels_are_the_restore_spellings() -> None:
    assert restore_status_label(TaskStatus.IN_PROGRESS) == "In Progress"
    assert restore_status_label(StepStatus.IN_PROGRESS) == "In Progress"
    assert restore_status_label(TaskStatus.SUCCESSFUL) == "Successful"
    assert restore_status_label(StepStatus.SKIPPED) == "Skipped"
    for status in [*TaskStatus, *StepStatus]:
        assert restore_status_label(status) == status.value.replace("_", " ").title()
