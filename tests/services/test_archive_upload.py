"""A backup's upload, run by its own child process: the archive written, sent and reported back."""

from __future__ import annotations

import asyncio
import hashlib
import os
import pickle
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from sddc_backup.archive.errors import ComponentFailedError
from sddc_backup.archive.reader import DiscardingSink, read_archive
from sddc_backup.domain.backup_config import BackupLocation, LocationProtocol
from sddc_backup.services.appliance import ApplianceLayout
from sddc_backup.services.archive_upload import UploadJob, UploadProcessError, upload_archive
from sddc_backup.storage.errors import LocationNotFoundError
from tests.services.conftest import Cluster
from tests.support.procs import descendants, stat_fields

pytestmark = pytest.mark.anyio
PASSPHRASE = b"Upl0ad-Pr0cess-Passphrase!"
MODULE = "sddc_backup.services.archive_upload"
NAME = "vcf-backup-test.tar.gz"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def tree(tmp_path: Path, files: int = 40, size: int = 256 << 10) -> Path:
    root = tmp_path / "etc"
    root.mkdir()
    for i in range(files):
        (root / f"file-{i:02d}.bin").write_bytes(os.urandom(size))  # random: the archive stays large
    return root


def job(tmp_path: Path, directory: Path | None = None, **layout: object) -> UploadJob:
    if directory is None:
        directory = tmp_path / "backups"
        directory.mkdir(exist_ok=True)
    return UploadJob(
        NAME,
        "vcf-backup-test",
        {"product": "sddc-backup"},
        ApplianceLayout(scratch=tmp_path / "scratch", **layout),  # type: ignore[arg-type]
        {"backup-configuration.json": b"{}"},
        PASSPHRASE,
        BackupLocation(LocationProtocol.LOCAL, str(directory)),
        mtime=1.7e9,
    )


def proc_file(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def cmdline(pid: int) -> str:
    return proc_file(pid, "cmdline").replace(b"\0", b" ").decode()


def uploaders() -> list[int]:
    """The upload processes this test started: its own children only. A process that an upload forks
    to run ``pg_dump`` shows the upload's command line until it execs."""
    me = os.getpid()
    return [pid for pid in descendants(me) if MODULE in cmdline(pid) and parent(pid) == me]


def parent(pid: int) -> int | None:
    fields = stat_fields(f"/proc/{pid}/stat")
    return int(fields[1]) if fields is not None else None


@pytest.fixture
def no_new_processes() -> Iterator[None]:
    """Every process a test starts under this one is gone when it ends (the session's PostgreSQL
    and sshd were there before)."""
    before = set(descendants(os.getpid()))
    yield
    assert set(descendants(os.getpid())) - before == set()


async def started(task: asyncio.Task[object], seen: list[int]) -> int:
    """The child's pid, once it has sent its first bytes."""
    while not seen or not uploaders():
        assert not task.done(), task
        await asyncio.sleep(0.01)
    (pid,) = uploaders()
    return pid


async def test_the_child_uploads_the_whole_archive_and_reports_it(
    tmp_path: Path, no_new_processes: None
) -> None:
    root = tree(tmp_path)
    seen: list[int] = []
    uploaded = await upload_archive(job(tmp_path, paths=(root,)), seen.append)
    stored = (tmp_path / "backups" / NAME).read_bytes()
    assert uploaded.result.info.size == uploaded.size == len(stored) == seen[-1]
    assert uploaded.result.sha256 == hashlib.sha256(stored).hexdigest()
    assert seen == sorted(seen) and len(seen) > 1  # progress arrived while it ran
    report = read_archive([stored], PASSPHRASE, DiscardingSink())  # checks every member against the manifest
    names = {m.name for m in report.members}
    assert {f"vcf-backup-test/files{root}/file-{i:02d}.bin" for i in range(40)} <= names
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == [NAME]


async def test_the_outcome_the_server_receives_does_not_grow_with_the_number_of_files(
    tmp_path: Path, no_new_processes: None
) -> None:
    # The server keeps what it unpickles scattered over its heap: the manifest stays in the child.
    root = tree(tmp_path, files=2000, size=16)
    uploaded = await upload_archive(job(tmp_path, paths=(root,)), lambda _: None)
    assert uploaded.size == (tmp_path / "backups" / NAME).stat().st_size
    assert len(pickle.dumps(uploaded)) < 2048


async def test_the_secrets_are_in_neither_argv_nor_the_environment_of_the_child(
    tmp_path: Path, no_new_processes: None
) -> None:
    seen: list[int] = []
    task = asyncio.ensure_future(
        upload_archive(job(tmp_path, paths=(tree(tmp_path, files=80),)), seen.append)
    )
    pid = await started(task, seen)
    argv, environ = proc_file(pid, "cmdline"), proc_file(pid, "environ")
    await task
    assert MODULE.encode() in argv and environ  # the right process, read for real
    assert PASSPHRASE not in argv and PASSPHRASE not in environ
    assert b"MALLOC_ARENA_MAX=" in environ  # two glibc heaps, as the server has


async def test_a_cancelled_upload_stops_the_child_and_pg_dump_and_leaves_nothing(
    tmp_path: Path, cluster: Cluster, name: str, no_new_processes: None
) -> None:
    cluster.create(name, "kept")
    cluster.execute("CREATE TABLE filler AS SELECT g, md5(g::text) FROM generate_series(1, 300000) g", name)
    seen: list[int] = []
    upload = job(tmp_path, paths=(tree(tmp_path, files=80),), postgres_dsn=cluster.url(name))
    task = asyncio.ensure_future(upload_archive(upload, seen.append))
    await started(task, seen)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert uploaders() == []
    assert list((tmp_path / "backups").iterdir()) == []  # not even the temporary object


async def test_a_failing_component_raises_its_own_error_in_the_server(
    tmp_path: Path, no_new_processes: None
) -> None:
    upload = job(tmp_path, postgres_dsn="postgresql://nobody@127.0.0.1:1/nothing")
    with pytest.raises(ComponentFailedError) as failed:
        await upload_archive(upload, lambda sent: None)
    assert failed.value.error_code == ComponentFailedError.error_code
    assert list((tmp_path / "backups").iterdir()) == []


async def test_a_storage_error_keeps_its_error_code(tmp_path: Path, no_new_processes: None) -> None:
    upload = job(tmp_path, directory=tmp_path / "missing", paths=(tree(tmp_path, files=2),))
    with pytest.raises(LocationNotFoundError) as failed:
        await upload_archive(upload, lambda sent: None)
    assert failed.value.error_code == LocationNotFoundError.error_code


async def test_a_killed_child_is_an_error_not_a_short_backup(tmp_path: Path, no_new_processes: None) -> None:
    seen: list[int] = []
    task = asyncio.ensure_future(
        upload_archive(job(tmp_path, paths=(tree(tmp_path, files=80),)), seen.append)
    )
    os.kill(await started(task, seen), signal.SIGKILL)
    with pytest.raises(UploadProcessError, match="status -9") as failed:
        await task
    assert failed.value.error_code == "BACKUP_UPLOAD_PROCESS_FAILED" and failed.value.remediation
    assert NAME not in [p.name for p in (tmp_path / "backups").iterdir()]
