"""The command sequences of the operator documentation, run as written against real processes.

The quick start (docs/quick-start.md), the VCF tooling recipes (docs/vcf-tooling.md), the disaster
recovery runbook (docs/disaster-recovery.md) and the first look of docs/troubleshooting.md are run
against a real server (``sddc-backup serve``), a real OpenSSH server, and, for the runbook, a real
appliance (PostgreSQL, two directory trees, a SQLite file) restored on a second, freshly started
server. Each test asserts on what the sequence did: exit statuses, task statuses in the output, and
the files, databases and configuration afterwards.

Which blocks run, and how, is described in tests/support/doc_blocks.py: a block is runnable when the
line before its fence is ``<!-- test: NAME -->``; lines that set a variable the test supplies (the
values the reader types) are left out, and every other line runs as written. The Python SDK snippets
of vcf-tooling.md are marked the same way and run with this interpreter. Blocks without a marker
(systemd, another host, sample output) are not run, but every ``sddc-backup`` command line in them is
checked against the real command tree, and every link in the four documents must lead somewhere.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from sddc_backup.cli.main import build_cli
from tests.app.test_restore_disaster_recovery import wipe
from tests.support.appliance import Appliance, tree_hashes
from tests.support.doc_blocks import DOCS, ROOT, Raw, Shell, blocks
from tests.support.http import Api
from tests.support.restore import ELEMENTS, PASSPHRASE, PHASE_NAMES
from tests.support.server import ADMIN_PASSWORD, ServerProcess
from tests.support.sshd import SshServer

QUICK_START = DOCS / "quick-start.md"
VCF_TOOLING = DOCS / "vcf-tooling.md"
RUNBOOK = DOCS / "disaster-recovery.md"
TROUBLESHOOTING = DOCS / "troubleshooting.md"
OPERATOR_DOCS = (QUICK_START, VCF_TOOLING, RUNBOOK, TROUBLESHOOTING)
# Every block marked in the documents, and only those, is run by a test below.
RUN_HERE = {
    QUICK_START: {"quick-start-configure", "quick-start-backup", "quick-start-restore"},
    VCF_TOOLING: {
        "vcf-curl-token",
        "vcf-curl-configure",
        "vcf-curl-backup",
        "vcf-curl-restore",
        "vcf-powervcf",
        "vcf-ansible",
        "vcf-sdk-connect",
        "vcf-sdk-configure",
        "vcf-sdk-backup",
        "vcf-sdk-restore",
    },
    RUNBOOK: {
        "dr-copy",
        "dr-token",
        "dr-wait",
        "dr-restore",
        "dr-follow",
        "dr-verify",
        "dr-failure",
        "dr-cli",
    },
    TROUBLESHOOTING: {"troubleshooting-first-look"},
}
FRESH_ADMIN_PASSWORD = "Fr3sh!host-admin-password"
WRONG_PASSPHRASE = "N0t!the-passphrase"
SCHEDULE = {  # the lost host's schedule; never due during a test
    "resourceType": "SDDC_MANAGER",
    "frequency": "WEEKLY",
    "daysOfWeek": ["SUNDAY"],
    "hourOfDay": 2,
    "minuteOfHour": 0,
    "takeScheduledBackups": False,
    "takeBackupOnStateChange": False,
}


# -- helpers ------------------------------------------------------------------------------------------


def certificate_fingerprint(cert: Path) -> str:
    """The fingerprint as the server logs it at start (``3F:A0:…``)."""
    digest = x509.load_pem_x509_certificate(cert.read_bytes()).fingerprint(hashes.SHA256())
    return digest.hex(":").upper()


def new_fqdn() -> str:
    """An FQDN of the test's own: its backup names (and their copies in /tmp) are its own too."""
    return f"docs-{uuid.uuid4().hex[:8]}.test.local"


def started(data_dir: Path, env: dict[str, str]) -> ServerProcess:
    server = ServerProcess(data_dir)
    server.base_env = env
    return server.start()


def sftp_variables(sftp: SshServer, directory: Path) -> dict[str, str]:
    return {
        "SFTP_HOST": sftp.host,
        "SFTP_PORT": str(sftp.port),
        "SFTP_USER": sftp.user,
        "SFTP_PASSWORD": sftp.password,
        "SFTP_DIR": str(directory),
    }


def curl_variables(server: ServerProcess, password: str = ADMIN_PASSWORD) -> dict[str, str]:
    return {"URL": server.base_url, "CA": str(server.cert), "PW": password}


def make_tree(root: Path) -> Path:
    """A small directory tree for a server to protect."""
    (root / "sub").mkdir(parents=True)
    (root / "app.properties").write_text("a=1\n")
    (root / "sub" / "data.bin").write_bytes(bytes(range(256)) * 64)
    return root


def change_tree(tree: Path) -> Raw:
    """The reader's day of changes between the backup and the restore, as lines of the test's own."""
    return Raw(
        f"echo changed > {shlex.quote(str(tree / 'app.properties'))}; rm -r {shlex.quote(str(tree / 'sub'))}"
    )


def succeeded(result: Any) -> str:
    assert result.returncode == 0, (
        f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return str(result.stdout)


def backup_names(directory: Path) -> set[str]:
    return {p.name for p in directory.glob("vcf-backup-*.tar.gz")}


def ssh_client_config(workdir: Path, sftp: SshServer) -> Path:
    """A directory with an ``scp`` that uses the SSH client configuration an operator would have in
    ``~/.ssh`` for the SFTP server (its host keys known, the client key). ssh reads ``~`` from the
    password database, not from HOME, so the test passes the file with ``-F`` instead."""
    ssh = workdir / "ssh"
    ssh.mkdir(mode=0o700)
    known = "".join(
        f"[{sftp.host}]:{sftp.port} {' '.join(key.with_suffix('.pub').read_text().split()[:2])}\n"
        for kind, key in sftp.host_keys.items()
        if kind in sftp.key_types
    )
    (ssh / "known_hosts").write_text(known)
    (ssh / "config").write_text(
        f"Host {sftp.host}\n  IdentityFile {sftp.client_key}\n  IdentitiesOnly yes\n  BatchMode yes\n"
        f"  StrictHostKeyChecking yes\n  UserKnownHostsFile {ssh / 'known_hosts'}\n"
    )
    scp = ssh / "scp"
    real = shutil.which("scp")
    assert real, "scp is not installed: apt-get install -y openssh-client"
    scp.write_text(f'#!/bin/sh\nexec {real} -F {ssh / "config"} "$@"\n')
    scp.chmod(0o755)
    return ssh


# -- the documents, without a server -------------------------------------------------------------------


def test_the_marked_blocks_are_the_ones_the_tests_run() -> None:
    source = Path(__file__).read_text()
    for doc, names in RUN_HERE.items():
        assert {b.name for b in blocks(doc)} == names, doc.name
        for name in names:
            assert source.count(f'"{name}"') >= 2, f"no test below runs {name}"
    for doc in (ROOT / "README.md", *DOCS.rglob("*.md")):
        if doc not in RUN_HERE:
            assert blocks(doc) == [], f"{doc} has marked blocks that no test runs"


def command_lines(doc: Path) -> Iterator[list[str]]:
    """The arguments of every ``sddc-backup`` call in the shell blocks of ``doc``, marked or not."""
    text = doc.read_text()
    for info, block in re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S):
        if info not in ("", "sh"):
            continue
        for raw in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"^\$ ", "", raw.strip())
            for found in re.finditer(r"(?:^|\$\(|[;&|(]\s*)sddc-backup\s+([^|;)&<>#\n]*)", line):
                yield shlex.split(found[1])


def test_the_sddc_backup_command_lines_name_real_commands_and_options() -> None:
    root: Any = typer.main.get_command(build_cli(cast(Any, object())))  # typer's own click types
    seen = 0
    for doc in OPERATOR_DOCS:
        for words in command_lines(doc):
            command, args = root, list(words)
            while hasattr(command, "commands") and args and not args[0].startswith("-"):
                assert args[0] in command.commands, f"{doc.name}: sddc-backup {' '.join(words)}"
                command, args = command.commands[args[0]], args[1:]
            assert not hasattr(command, "commands"), f"{doc.name}: sddc-backup {' '.join(words)}"
            options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
            for arg in args:
                if arg.startswith("-") and arg != "-":
                    assert arg.split("=")[0] in options, f"{doc.name}: {arg} in sddc-backup {' '.join(words)}"
            seen += 1
    assert seen > 30


def slugs(doc: Path) -> set[str]:
    """The anchors that GitHub gives the headings of ``doc``."""
    text = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.M | re.S)
    headings = re.findall(r"^#{1,6} (.+)$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_links_lead_to_files_and_headings_that_exist() -> None:
    for doc in (ROOT / "README.md", *OPERATOR_DOCS):
        text = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.M | re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (doc.parent / path).resolve() if path else doc
            assert linked.exists(), f"{doc.name}: {target}"
            if anchor:
                assert anchor in slugs(linked), f"{doc.name}: {target}"


def test_every_code_in_the_troubleshooting_index_is_documented() -> None:
    index = TROUBLESHOOTING.read_text().split("## By error code", 1)[1].split("\n## ", 1)[0]
    documented = (DOCS / "errors.md").read_text() + (DOCS / "cli.md").read_text()
    codes = {c for row in re.findall(r"^\| (.+?) \|", index, flags=re.M) for c in re.findall(r"`(\w+)`", row)}
    codes -= {"errorCode", "SKIPPED", "manifestVerified", "false"}
    assert len(codes) > 30
    for code in codes:
        assert f"`{code}`" in documented, code


def test_the_readme_lists_the_operator_documents() -> None:
    section = (ROOT / "README.md").read_text().split("## Documentation", 1)[1].split("\n## ", 1)[0]
    for doc in OPERATOR_DOCS:
        assert f"(docs/{doc.name})" in section, doc.name


# -- the quick start ----------------------------------------------------------------------------------


def test_the_quick_start_configures_backs_up_verifies_and_restores(
    tmp_path: Path, sftp_server: SshServer
) -> None:
    tree = make_tree(tmp_path / "etc" / "app")
    server = started(
        tmp_path / "data", {"SDDC_BACKUP_PATHS": json.dumps([str(tree)]), "SDDC_BACKUP_FQDN": new_fqdn()}
    )
    directory = sftp_server.account.new_directory()
    try:
        shell = Shell(
            tmp_path / "operator",
            {
                "SDDC_BACKUP_URL": server.base_url,
                "SDDC_BACKUP_FINGERPRINT": certificate_fingerprint(server.cert),
                "SDDC_BACKUP_PASSWORD": ADMIN_PASSWORD,
                **sftp_variables(sftp_server, directory),
                "PASSPHRASE": PASSPHRASE,
            },
        )
        out = succeeded(shell.run(QUICK_START, "quick-start-configure"))
        assert f"logged in to {server.base_url} as admin@local (ADMIN)" in out
        assert f"offers {sftp_server.fingerprints['ecdsa']}" in out
        assert "validation SUCCEEDED" in out
        assert re.search(r"Edit backup configuration \S+: SUCCESSFUL", out), out
        assert re.search(r"configured +yes", out) and "weekly on SUNDAY at 02:00 UTC" in out, out
        assert "10 most recent, 2 days of hourly, 15 days of daily" in out
        assert sftp_server.password not in out and PASSPHRASE not in out
        assert not (shell.workdir / "backup-spec.json").exists()

        at_backup = tree_hashes(tree)
        out = succeeded(
            shell.run(QUICK_START, "quick-start-backup", change_tree(tree), "quick-start-restore")
        )
        (name,) = backup_names(directory)
        assert (directory / f"{name}.sha256").exists()
        assert re.search(r"SDDC Manager backup \S+: SUCCESSFUL", out), out
        assert re.search(r"Verify backup \S+: SUCCESSFUL", out), out
        assert re.search(r"SDDC Manager Restore Operation \S+: Successful", out), out
        assert out.count(name) >= 2  # in both listings
        assert tree_hashes(tree) == at_backup
        api = Api(server)
        (listed,) = api.request("GET", "/v1/backups", api.token()).json()["elements"]
        assert listed["fileName"] == name and listed["manifestVerified"] is True
        assert list((shell.workdir / "tmp").iterdir()) == []  # the passphrase file is gone

        out = succeeded(shell.run(TROUBLESHOOTING, "troubleshooting-first-look"))
        assert "validation SUCCEEDED" in out and name in out
    finally:
        server.stop()


# -- the VCF tooling ----------------------------------------------------------------------------------


@dataclass
class Tooling:
    server: ServerProcess
    tree: Path
    directory: Path
    shell: Shell


@pytest.fixture
def tooling(tmp_path: Path, sftp_server: SshServer) -> Iterator[Tooling]:
    """A server protecting a small tree, with an SFTP directory of its own, not configured yet."""
    tree = make_tree(tmp_path / "etc" / "app")
    server = started(
        tmp_path / "data", {"SDDC_BACKUP_PATHS": json.dumps([str(tree)]), "SDDC_BACKUP_FQDN": new_fqdn()}
    )
    directory = sftp_server.account.new_directory()
    variables = {**curl_variables(server), **sftp_variables(sftp_server, directory), "PASSPHRASE": PASSPHRASE}
    try:
        yield Tooling(server, tree, directory, Shell(tmp_path / "operator", variables))
    finally:
        server.stop()


def test_the_vcf_curl_recipes_and_the_powervcf_calls_configure_back_up_and_restore(
    tooling: Tooling, sftp_server: SshServer
) -> None:
    at_backup = tree_hashes(tooling.tree)
    result = tooling.shell.run(
        VCF_TOOLING,
        "vcf-curl-token",
        "vcf-curl-configure",
        "vcf-curl-backup",
        change_tree(tooling.tree),
        "vcf-curl-restore",
        Raw(f"test \"$(cat {tooling.tree / 'app.properties'})\" = 'a=1'"),  # restored by the recipe
        change_tree(tooling.tree),
        "vcf-powervcf",
    )
    out = succeeded(result)
    assert len(re.findall(r"^task \S+: SUCCESSFUL$", out, flags=re.M)) == 2, out  # configure, backup
    last = dict(re.findall(r"^restore (\S+): (\S.*)$", out, flags=re.M))  # each restore's last status
    assert list(last.values()) == ["Successful", "Successful"], out  # the curl recipe's, PowerVCF's
    assert "SDDC_MANAGER_BACKUP SUCCESSFUL" in out and "CONFIGURE_BACKUP SUCCESSFUL" in out
    assert tree_hashes(tooling.tree) == at_backup
    (name,) = backup_names(tooling.directory)
    api = Api(tooling.server)
    config = api.request("GET", "/v1/system/backup-configuration", api.token()).json()
    assert config["isConfigured"] is True
    assert config["backupLocations"][0]["sshFingerprint"] == sftp_server.fingerprints["ecdsa"]
    assert name.startswith("vcf-backup-docs-")


def test_the_ansible_style_flow_changes_the_configuration_once(tooling: Tooling) -> None:
    first = succeeded(tooling.shell.run(VCF_TOOLING, "vcf-curl-token", "vcf-ansible"))
    assert re.search(r"^task \S+: SUCCESSFUL\nbackup configuration changed$", first, flags=re.M), first
    assert '{"isConfigured":true,"schedule":"HOURLY"}' in first
    second = succeeded(tooling.shell.run(VCF_TOOLING, "vcf-curl-token", "vcf-ansible"))
    assert "backup configuration unchanged" in second and "task " not in second, second
    assert '{"isConfigured":true,"schedule":"HOURLY"}' in second
    api = Api(tooling.server)
    tasks = api.request("GET", "/v1/tasks", api.token(), params={"taskType": "CONFIGURE_BACKUP"}).json()
    assert [t["status"] for t in tasks["elements"]] == ["SUCCESSFUL"]  # one PATCH in two runs
    assert not list(tooling.shell.workdir.glob("*.json"))


def test_the_python_sdk_snippets_configure_back_up_and_restore(
    tooling: Tooling, sftp_server: SshServer
) -> None:
    out = succeeded(tooling.shell.run(VCF_TOOLING, "vcf-sdk-connect", "vcf-sdk-configure", "vcf-sdk-backup"))
    assert f"administrator: {sftp_server.fingerprints['ecdsa']}" in out
    assert "SUCCEEDED The backup user can log in" in out
    assert "configure: SUCCESSFUL" in out and "backup: SUCCESSFUL" in out, out
    (name,) = backup_names(tooling.directory)
    at_backup = tree_hashes(tooling.tree)
    copy = Path("/tmp") / name  # where VCF's procedure puts it; the name is this test's own
    shutil.copyfile(tooling.directory / name, copy)
    try:
        (tooling.tree / "app.properties").write_text("changed\n")
        out = succeeded(
            tooling.shell.run(
                VCF_TOOLING, "vcf-sdk-connect", "vcf-sdk-restore", overrides={"BACKUP_FILE": str(copy)}
            )
        )
    finally:
        copy.unlink(missing_ok=True)
    assert "restore: Successful" in out, out
    phases = re.findall(r"^(Successful|Failed|Pending) +(\w+)$", out, flags=re.M)
    assert phases == [("Successful", phase) for phase in PHASE_NAMES], out
    assert tree_hashes(tooling.tree) == at_backup


# -- the disaster recovery runbook ----------------------------------------------------------------------


@dataclass
class Disaster:
    """A backup of an appliance, and the appliance and its server lost; a fresh server runs beside it."""

    appliance: Appliance
    at_backup: dict[str, Any]
    configuration: dict[str, Any]
    backup: str
    directory: Path
    fresh: ServerProcess
    shell: Shell


MakeDisaster = Callable[[Callable[[Appliance], None]], Disaster]


@pytest.fixture
def disaster(tmp_path: Path, appliance: Appliance, sftp_server: SshServer) -> Iterator[MakeDisaster]:
    fqdn = new_fqdn()
    env = {**appliance.env(), "SDDC_BACKUP_FQDN": fqdn}
    directory = sftp_server.account.new_directory()
    servers: list[ServerProcess] = []

    def happen(lose: Callable[[Appliance], None]) -> Disaster:
        lost = started(tmp_path / "lost-data", env)
        servers.append(lost)
        api = Api(lost)
        token = api.token()
        spec = {
            "backupLocations": [sftp_server.location_spec(directoryPath=str(directory))],
            "backupSchedules": [SCHEDULE],
            "encryption": {"passphrase": PASSPHRASE},
        }
        r = api.request("PATCH", "/v1/system/backup-configuration", token, json=spec)
        assert api.wait_task(r.json()["id"], token)["status"] == "SUCCESSFUL", r.text
        configuration = api.request("GET", "/v1/system/backup-configuration", token).json()
        at_backup = appliance.snapshot()
        r = api.request("POST", "/v1/backups/tasks", token, json={"elements": ELEMENTS})
        assert api.wait_task(r.json()["id"], token, timeout=180)["status"] == "SUCCESSFUL", r.text
        (backup,) = backup_names(directory)
        lost.stop()
        shutil.rmtree(lost.data_dir)
        lose(appliance)

        fresh = started(tmp_path / "fresh-data", {**env, "SDDC_BACKUP_ADMIN_PASSWORD": FRESH_ADMIN_PASSWORD})
        servers.append(fresh)
        variables = {**sftp_variables(sftp_server, directory), "BACKUP": backup, "PASSPHRASE": PASSPHRASE}
        del variables["SFTP_PASSWORD"]  # the copy logs in with the operator's SSH key
        shell = Shell(tmp_path / "operator", variables)
        shell.path_prefix.append(ssh_client_config(shell.workdir, sftp_server))
        return Disaster(appliance, at_backup, configuration, backup, directory, fresh, shell)

    try:
        yield happen
    finally:
        for server in servers:
            server.stop()
        for path in Path("/tmp").glob(f"vcf-backup-{fqdn.replace('.', '-')}-*"):
            path.unlink()


def test_the_runbook_restores_a_wiped_appliance_on_a_fresh_server_with_curl(disaster: MakeDisaster) -> None:
    case = disaster(wipe)
    appliance, shell = case.appliance, case.shell
    curl = curl_variables(case.fresh, FRESH_ADMIN_PASSWORD)
    api = Api(case.fresh)
    token = api.token("admin@local", FRESH_ADMIN_PASSWORD)
    assert api.request("GET", "/v1/system/backup-configuration", token).json()["isConfigured"] is False

    out = succeeded(shell.run(RUNBOOK, "dr-copy"))
    assert f"{case.backup}: OK" in out
    assert (Path("/tmp") / case.backup).read_bytes() == (case.directory / case.backup).read_bytes()

    # A wrong passphrase first: the task fails in ExtractSDDCManagerBackup and nothing changes.
    steps = ("dr-token", "dr-wait", "dr-restore", "dr-follow")
    failed = succeeded(
        shell.run(RUNBOOK, *steps, "dr-failure", overrides={**curl, "PASSPHRASE": WRONG_PASSPHRASE})
    )
    assert re.search(r"^\d\d:\d\d:\d\d Failed$", failed, flags=re.M), failed
    report = json.loads(failed[failed.rindex("\n{") :])
    assert report["status"] == "Failed" and report["phase"] == "ExtractSDDCManagerBackup", report
    (error,) = report["errors"]
    assert error["errorCode"] == "ARCHIVE_WRONG_PASSPHRASE" and "rolled back" in error["message"]
    assert "nothing needs undoing" in error["remediationMessage"]
    assert not any(t.exists() for t in appliance.trees) and not appliance.sqlite.exists()

    out = succeeded(shell.run(RUNBOOK, *steps, "dr-verify", overrides=curl))
    assert re.search(r"^restore task: \S+$", out, flags=re.M), out
    assert re.search(r"^\d\d:\d\d:\d\d Successful$", out, flags=re.M), out
    assert re.findall(r"^(\w+)\t(\w+)$", out, flags=re.M) == [("Successful", p) for p in PHASE_NAMES], out
    assert "OPERATIONS_MANAGER UP" in out and "STATE_STORE UP" in out
    assert '{"isConfigured":true,"location":"127.0.0.1","schedule":"WEEKLY"}' in out, out
    assert re.search(r"SDDC Manager backup \S+: SUCCESSFUL", out), out
    assert appliance.snapshot() == case.at_backup
    assert api.request("GET", "/v1/system/backup-configuration", token).json() == case.configuration
    assert len(backup_names(case.directory)) == 2  # the fresh server backs up with what it restored
    assert not (Path("/tmp") / case.backup).exists() and not (Path("/tmp") / f"{case.backup}.sha256").exists()


def test_the_runbook_restores_with_the_sddc_backup_command(disaster: MakeDisaster) -> None:
    case = disaster(Appliance.change_everything)
    appliance, shell = case.appliance, case.shell
    changed = appliance.snapshot()
    assert changed != case.at_backup
    client = {
        "SDDC_BACKUP_URL": case.fresh.base_url,
        "SDDC_BACKUP_CA_CERT": str(case.fresh.cert),
        "SDDC_BACKUP_PASSWORD": FRESH_ADMIN_PASSWORD,
    }
    succeeded(shell.run(RUNBOOK, "dr-copy"))

    wrong = shell.run(RUNBOOK, "dr-cli", overrides={**client, "PASSPHRASE": WRONG_PASSPHRASE})
    assert wrong.returncode == 1, (wrong.stdout, wrong.stderr)
    assert re.search(r"SDDC Manager Restore Operation \S+: Failed", wrong.stdout), wrong.stdout
    assert "error ARCHIVE_WRONG_PASSPHRASE: " in wrong.stderr and "Traceback" not in wrong.stderr
    assert appliance.snapshot() == changed

    out = succeeded(shell.run(RUNBOOK, "dr-cli", overrides=client))
    assert re.search(r"SDDC Manager Restore Operation \S+: Successful\n$", out), out
    assert appliance.snapshot() == case.at_backup
