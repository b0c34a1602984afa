"""``sddc-backup archive …`` as an operator runs it: real processes, a real PostgreSQL database and
SQLite file, the real openssl and tar."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sddc_backup.archive.extract import SafeExtractor
from sddc_backup.services import archives
from sddc_backup.services.components.postgres_restore import restore_into_new_database
from sddc_backup.services.own_settings import read_own_settings
from tests.support.mounts import tmpfs
from tests.support.postgres import PostgresCluster
from tests.support.recovery import openssl_listing, openssl_tar
from tests.support.server import ServerProcess

PASSPHRASE = "VMw@re1!VMw@re1!"


def psql(cluster: PostgresCluster, url: str, sql: str) -> str:
    out = subprocess.run(
        [str(cluster.bindir / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def data_dump(cluster: PostgresCluster, url: str) -> str:
    return subprocess.run(
        # A fixed restrict key: pg_dump otherwise writes a random one into every dump.
        [str(cluster.bindir / "pg_dump"), "--data-only", "--no-owner", "--restrict-key=compare", "-d", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture
def appliance(tmp_path: Path, postgres: PostgresCluster) -> Iterator[tuple[ServerProcess, str, Path]]:
    """An appliance: a PostgreSQL database with varied data, a SQLite file, and a config tree."""
    url = postgres.create_database(f"app_{uuid.uuid4().hex[:8]}")
    psql(
        postgres,
        url,
        "CREATE TABLE host (id serial PRIMARY KEY, fqdn text, note text, blob bytea);"
        "INSERT INTO host (fqdn, note, blob) SELECT 'esx-' || g || '.sfo.rainpole.io', "
        "'Grüße 東京 ' || g, decode(md5(g::text), 'hex') FROM generate_series(1, 5000) g;"
        "CREATE TABLE domain (name text PRIMARY KEY, payload jsonb);"
        "INSERT INTO domain SELECT 'wld-' || g, jsonb_build_object('n', g) FROM generate_series(1, 2000) g;"
        "SELECT lo_from_bytea(0, convert_to(repeat('large object ', 10000), 'UTF8'));",
    )
    tree = tmp_path / "opt" / "vmware" / "vcf"
    (tree / "conf").mkdir(parents=True)
    (tree / "conf" / "app.properties").write_text("lcm.enabled=true\n")
    (tree / "current").symlink_to("conf")
    db = tmp_path / "inventory.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.executemany("INSERT INTO t VALUES (?)", [(f"row {i}",) for i in range(1000)])
    conn.close()
    proc = ServerProcess(tmp_path / "data")
    proc.extra_env = {
        "SDDC_BACKUP_PATHS": json.dumps([str(tree)]),
        "SDDC_BACKUP_POSTGRES_DSN": url,
        "SDDC_BACKUP_SQLITE_PATHS": json.dumps([str(db)]),
    }
    (tmp_path / "pass").write_text(PASSPHRASE + "\n")
    yield proc, url, tmp_path


def create(proc: ServerProcess, tmp_path: Path) -> Path:
    out = tmp_path / "backups"
    out.mkdir(exist_ok=True)
    result = proc.cli("archive", "create", "-p", str(tmp_path / "pass"), "-o", str(out))
    assert result.returncode == 0, result.stderr
    (archive,) = out.glob("*.tar.gz")
    return archive


def test_create_writes_an_archive_that_openssl_and_tar_open(
    appliance: tuple[ServerProcess, str, Path],
) -> None:
    proc, _, tmp_path = appliance
    archive = create(proc, tmp_path)
    assert archive.name.startswith("vcf-backup-sddc-backup-test-local-")
    assert archive.stat().st_mode & 0o777 == 0o600
    sums = subprocess.run(["sha256sum", "-c", f"{archive.name}.sha256"], cwd=archive.parent, check=False)
    assert sums.returncode == 0
    listing = openssl_listing(archive, tmp_path / "pass")
    base = archive.name.removesuffix(".tar.gz")
    assert listing[0] == f"{base}/metadata.json" and listing[-1] == f"{base}/manifest.json"
    for member in (
        "database/sddc-postgres.bkp",
        "database/sqlite/0-inventory.db",
        "appliancemanager_backup_configuration.json",
        "appliancemanager_users.json",
        "appliancemanager_ssh_knownHosts.json",
    ):
        assert f"{base}/{member}" in listing
    assert not list(archive.parent.glob("*.part"))


def test_database_comes_back_identical_in_a_fresh_database(
    appliance: tuple[ServerProcess, str, Path], postgres: PostgresCluster
) -> None:
    proc, url, tmp_path = appliance
    archive = create(proc, tmp_path)
    staging = tmp_path / "staging"
    extractor = SafeExtractor(staging)
    report = archives.verify(archive, PASSPHRASE.encode(), extractor)
    extractor.close()
    assert not report.legacy
    restored = restore_into_new_database(
        staging / "database" / "sddc-postgres.bkp", url, f"restored_{uuid.uuid4().hex[:8]}"
    )
    assert data_dump(postgres, restored) == data_dump(postgres, url)
    with sqlite3.connect(staging / "database" / "sqlite" / "0-inventory.db") as copy:
        assert copy.execute("SELECT count(*) FROM t").fetchone() == (1000,)
    copy.close()


def test_verify_inspect_decrypt_and_a_wrong_passphrase(appliance: tuple[ServerProcess, str, Path]) -> None:
    proc, _, tmp_path = appliance
    archive = create(proc, tmp_path)
    verified = proc.cli("archive", "verify", "-p", str(tmp_path / "pass"), str(archive), "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["legacy"] is False
    inspected = json.loads(proc.cli("archive", "inspect", "-p", str(tmp_path / "pass"), str(archive)).stdout)
    assert inspected["metadata"]["fqdn"] == "sddc-backup.test.local"
    names = [m["name"] for m in inspected["manifest"]["members"]]
    assert any(n.endswith("database/sddc-postgres.bkp") for n in names)
    out = tmp_path / "plain.tar.gz"
    assert (
        proc.cli("archive", "decrypt", "-p", str(tmp_path / "pass"), str(archive), "-o", str(out)).returncode
        == 0
    )
    assert subprocess.run(["tar", "-tzf", str(out)], capture_output=True, check=False).returncode == 0
    (tmp_path / "wrong").write_text("Wr0ng!passphrase\n")
    for command in ("verify", "inspect"):
        wrong = proc.cli("archive", command, "-p", str(tmp_path / "wrong"), str(archive))
        assert wrong.returncode == 2
        assert "ARCHIVE_WRONG_PASSPHRASE" in wrong.stderr and "Traceback" not in wrong.stderr
        assert wrong.stdout == ""  # never garbage output
    bad_out = tmp_path / "never.tar.gz"
    wrong = proc.cli("archive", "decrypt", "-p", str(tmp_path / "wrong"), str(archive), "-o", str(bad_out))
    assert wrong.returncode == 2 and not bad_out.exists() and not list(tmp_path.glob("never*"))


def test_the_passphrase_comes_from_a_file_or_the_environment_never_an_argument(
    appliance: tuple[ServerProcess, str, Path],
) -> None:
    proc, _, tmp_path = appliance
    archive = create(proc, tmp_path)
    proc.extra_env["SDDC_BACKUP_PASSPHRASE"] = PASSPHRASE
    assert proc.cli("archive", "verify", str(archive)).returncode == 0
    del proc.extra_env["SDDC_BACKUP_PASSPHRASE"]
    missing = proc.cli("archive", "verify", str(archive))
    assert missing.returncode == 2 and "PASSPHRASE_MISSING" in missing.stderr
    assert proc.cli("archive", "verify", "--passphrase", PASSPHRASE, str(archive)).returncode == 2


def test_a_patched_folder_is_encrypted_again_with_a_fresh_manifest(
    appliance: tuple[ServerProcess, str, Path],
) -> None:
    proc, _, tmp_path = appliance
    archive = create(proc, tmp_path)
    work = tmp_path / "patch"
    work.mkdir()
    extracted = openssl_tar(archive, tmp_path / "pass", f"-xz -C {work}")
    assert extracted.returncode == 0, extracted.stderr
    folder = work / archive.name.removesuffix(".tar.gz")
    known_hosts = folder / "appliancemanager_ssh_knownHosts.json"
    known_hosts.write_text(
        '{"knownHosts": [{"host": "vc01", "keyType": "ecdsa-sha2-nistp256", "key": "AAAA"}]}\n'
    )
    patched = tmp_path / "patched" / archive.name
    patched.parent.mkdir()
    result = proc.cli("archive", "encrypt", "-p", str(tmp_path / "pass"), str(folder), "-o", str(patched))
    assert result.returncode == 0, result.stderr
    report = archives.verify(patched, PASSPHRASE.encode())
    assert not report.legacy and report.metadata and report.metadata["product"] == "sddc-backup"
    assert any(m.name.endswith("appliancemanager_ssh_knownHosts.json") for m in report.members)


def test_a_failing_component_leaves_no_archive_and_is_named(
    appliance: tuple[ServerProcess, str, Path],
) -> None:
    proc, url, tmp_path = appliance
    proc.extra_env["SDDC_BACKUP_POSTGRES_DSN"] = url.rsplit("/", 1)[0] + "/no_such_database"
    out = tmp_path / "backups"
    out.mkdir()
    result = proc.cli("archive", "create", "-p", str(tmp_path / "pass"), "-o", str(out))
    assert result.returncode == 1
    assert "BACKUP_COMPONENT_FAILED" in result.stderr and "no_such_database" in result.stderr
    assert list(out.iterdir()) == []


def test_a_vanished_path_fails_the_backup_and_names_it(appliance: tuple[ServerProcess, str, Path]) -> None:
    proc, _, tmp_path = appliance
    proc.extra_env["SDDC_BACKUP_PATHS"] = json.dumps([str(tmp_path / "gone")])
    out = tmp_path / "backups"
    out.mkdir()
    result = proc.cli("archive", "create", "-p", str(tmp_path / "pass"), "-o", str(out))
    assert result.returncode == 1 and str(tmp_path / "gone") in result.stderr
    assert list(out.iterdir()) == []


def test_a_file_from_the_plain_tar_openssl_pipeline_is_read_as_legacy(tmp_path: Path) -> None:
    folder = tmp_path / "vcf-backup-old-2023-09-19-10-53-02"
    (folder / "database").mkdir(parents=True)
    (folder / "database" / "sddc-postgres.bkp").write_text("COPY public.host (id) FROM stdin;\n1\n\\.\n")
    (folder / "metadata.json").write_text('{"hostname": "sfo-vcf01"}\n')
    legacy = tmp_path / f"{folder.name}.tar.gz"
    subprocess.run(
        f"tar -cz -C {tmp_path} {folder.name} | openssl enc -aes-256-cbc -md sha256 -pass pass:{PASSPHRASE} "
        f"-out {legacy}",
        shell=True,
        check=True,
        capture_output=True,
    )
    proc = ServerProcess(tmp_path / "data")
    proc.extra_env = {"SDDC_BACKUP_PASSPHRASE": PASSPHRASE}
    verified = proc.cli("archive", "verify", str(legacy))
    assert verified.returncode == 0 and "legacy, no manifest" in verified.stdout
    out = tmp_path / "plain.tar.gz"
    assert proc.cli("archive", "decrypt", str(legacy), "-o", str(out)).returncode == 0
    listing = subprocess.run(["tar", "-tzf", str(out)], capture_output=True, text=True, check=True).stdout
    assert f"{folder.name}/database/sddc-postgres.bkp" in listing
    assert out.stat().st_size > 0


def test_a_full_disk_leaves_no_partial_archive(appliance: tuple[ServerProcess, str, Path]) -> None:
    proc, _, tmp_path = appliance
    # A 256 KiB filesystem is a real full disk for the target.
    big = tmp_path / "big"
    big.mkdir()
    (big / "random.bin").write_bytes(os.urandom(2 << 20))
    proc.extra_env["SDDC_BACKUP_PATHS"] = json.dumps([str(big)])
    with tmpfs(tmp_path / "full") as full:
        result = proc.cli("archive", "create", "-p", str(tmp_path / "pass"), "-o", str(full))
        assert result.returncode == 1, result.stderr
        assert "BACKUP_WRITE_FAILED" in result.stderr and "No space left" in result.stderr
        assert "Traceback" not in result.stderr
        assert list(full.iterdir()) == []


def test_the_service_settings_in_a_backup_read_back_for_a_restore(
    appliance: tuple[ServerProcess, str, Path],
) -> None:
    proc, _, tmp_path = appliance
    added = proc.cli("users", "add", "ops@local", "--role", "OPERATOR", stdin="Operator!pw-123\n")
    assert added.returncode == 0, added.stderr
    archive = create(proc, tmp_path)
    with SafeExtractor(tmp_path / "staging") as sink:
        archives.verify(archive, PASSPHRASE.encode(), sink)
    own = read_own_settings(tmp_path / "staging")
    assert [(u.username, u.role.value) for u, _ in own.users] == [("ops@local", "OPERATOR")]
    assert own.users[0][1].startswith("$argon2id$")
    assert own.configuration.location is None and own.configuration.passphrase is None


def test_operator_mistakes_are_clear_errors(appliance: tuple[ServerProcess, str, Path]) -> None:
    proc, _, tmp_path = appliance
    cases = [
        (("archive", "verify", "-p", str(tmp_path / "pass"), str(tmp_path)), "ARCHIVE_NOT_READABLE"),
        (
            ("archive", "encrypt", "-p", str(tmp_path / "pass"), str(tmp_path / "nope"), "-o", "x"),
            "ARCHIVE_NOT_FOUND",
        ),
        (
            ("archive", "create", "-p", str(tmp_path / "pass"), "-o", str(tmp_path / "nope")),
            "BACKUP_DIRECTORY_NOT_FOUND",
        ),
    ]
    for args, code in cases:
        result = proc.cli(*args)
        assert result.returncode == 2 and code in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    (tmp_path / "weak").write_text("weak\n")
    weak = proc.cli("archive", "create", "-p", str(tmp_path / "weak"), "-o", str(tmp_path))
    assert weak.returncode == 2 and "PASSPHRASE_POLICY_VIOLATION" in weak.stderr
    proc.extra_env["SDDC_BACKUP_PATHS"] = "/not/json"
    bad = proc.cli("archive", "create", "-p", str(tmp_path / "pass"), "-o", str(tmp_path))
    assert bad.returncode == 2 and "INVALID_SETTING" in bad.stderr and "Traceback" not in bad.stderr


def test_a_passphrase_file_is_read_as_openssl_reads_it(appliance: tuple[ServerProcess, str, Path]) -> None:
    proc, _, tmp_path = appliance
    (tmp_path / "crlf").write_bytes(PASSPHRASE.encode() + b"\r\nsecond line\n")
    out = tmp_path / "backups"
    out.mkdir()
    assert proc.cli("archive", "create", "-p", str(tmp_path / "crlf"), "-o", str(out)).returncode == 0
    (archive,) = out.glob("*.tar.gz")
    assert any(name.endswith("/manifest.json") for name in openssl_listing(archive, tmp_path / "crlf"))
