"""A real OpenSSH ``sshd`` for the SFTP tests (Debian's openssh-server; CI installs it).

Each server listens on a free loopback port, runs in the foreground (``-D -e``) with its own config and
log, and offers the host keys a test chooses (ECDSA, Ed25519, RSA; throwaway keys made once per session
with ``ssh-keygen``). Logins go to a throwaway account of the session's own (``sddcbk-<random>``),
created with a random password and an authorized Ed25519 client key. Everything here needs root, as
the CI runs.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port
from tests.support.procs import descendants

USER_PREFIX = "sddcbk-"
KEY_TYPES = ("ecdsa", "ed25519", "rsa")
_SEARCH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin"])


def tool(name: str) -> str:
    """The path of ``name``; fails loudly (never skips) when it is missing."""
    found = shutil.which(name, path=_SEARCH)
    if found is None:
        raise RuntimeError(f"{name} is not installed: apt-get install -y openssh-server openssh-client")
    return found


def keygen(path: Path, key_type: str) -> Path:
    """A new key pair without a passphrase at ``path`` (and ``path``.pub)."""
    bits = ["-b", "3072"] if key_type == "rsa" else []
    subprocess.run(
        [tool("ssh-keygen"), "-q", "-t", key_type, *bits, "-N", "", "-C", "", "-f", str(path)], check=True
    )
    return path


def fingerprint(public_key: Path) -> str:
    """``SHA256:…`` exactly as ``ssh-keygen -l -E sha256`` prints it."""
    out = subprocess.run(
        [tool("ssh-keygen"), "-l", "-E", "sha256", "-f", str(public_key)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.split()[1]


@dataclass(frozen=True)
class Account:
    """The throwaway login on the test servers."""

    name: str
    password: str = field(repr=False)
    home: Path
    client_key: Path

    def new_directory(self, *, owner_is_user: bool = True) -> Path:
        """A fresh directory in the account's home: the user's own (0700), or root's (0755, read-only to
        the user)."""
        path = self.home / f"backups-{secrets.token_hex(4)}"
        path.mkdir(mode=0o700 if owner_is_user else 0o755)
        if owner_is_user:
            shutil.chown(path, self.name, self.name)
        return path


def ensure_account(workdir: Path) -> Account:
    """Create a throwaway login of this test session's own (``sddcbk-<random>``), with a random
    password and an authorized key. Sessions running at once on one machine never share it."""
    assert os.geteuid() == 0, "the SFTP tests start sshd and add a user: they need root (CI runs as root)"
    user = f"{USER_PREFIX}{secrets.token_hex(4)}"
    subprocess.run([tool("useradd"), "-m", "-s", "/bin/bash", user], check=True)
    password = secrets.token_urlsafe(18)
    subprocess.run([tool("chpasswd")], input=f"{user}:{password}\n", text=True, check=True)
    home = Path(pwd.getpwnam(user).pw_dir)
    home.chmod(0o755)  # sshd's StrictModes refuses group- or world-writable homes
    client_key = keygen(workdir / "client_ed25519", "ed25519")
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    authorized = ssh_dir / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    authorized.chmod(0o600)
    for path in (ssh_dir, authorized):
        shutil.chown(path, user, user)
    return Account(user, password, home, client_key)


def retire_account(account: Account, attempts: int = 50) -> bool:
    """After the session: remove the login and its home. ``userdel`` refuses while sshd's killed
    children of the user are still exiting, so it is tried again (and the user's processes ended)
    until the login is gone; returns whether it is."""
    for _ in range(attempts):
        subprocess.run(["pkill", "-KILL", "-u", account.name], check=False, capture_output=True)
        subprocess.run([tool("userdel"), "-r", account.name], check=False, capture_output=True)
        try:
            pwd.getpwnam(account.name)
        except KeyError:
            return True
        time.sleep(0.1)
    return False


def make_host_keys(workdir: Path) -> dict[str, Path]:
    """One private host key per type, made once and shared by the session's servers."""
    return {kind: keygen(workdir / f"ssh_host_{kind}_key", kind) for kind in KEY_TYPES}


@dataclass
class SshServer:
    """One running ``sshd``. ``fingerprints`` maps the offered key types to their ``SHA256:`` fingerprints."""

    account: Account
    host_keys: dict[str, Path]
    key_types: tuple[str, ...]
    workdir: Path
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    directory: Path = field(init=False)
    fingerprints: dict[str, str] = field(init=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.directory = self.account.new_directory()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "sshd.log").touch()

    @property
    def user(self) -> str:
        return self.account.name

    @property
    def password(self) -> str:
        return self.account.password

    @property
    def client_key(self) -> Path:
        return self.account.client_key

    @property
    def log_path(self) -> Path:
        return self.workdir / "sshd.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _config(self) -> Path:
        lines = [
            f"Port {self.port}",
            f"ListenAddress {self.host}",
            *(f"HostKey {self.host_keys[kind]}" for kind in self.key_types),
            f"PidFile {self.workdir / 'sshd.pid'}",
            "UsePAM no",
            "PasswordAuthentication yes",
            "PubkeyAuthentication yes",
            "KbdInteractiveAuthentication no",
            "AuthorizedKeysFile .ssh/authorized_keys",
            f"AllowUsers {self.account.name}",
            "PermitRootLogin no",
            "Subsystem sftp internal-sftp",
            "MaxStartups 100",
            "LogLevel DEBUG",
        ]
        config = self.workdir / "sshd_config"
        config.write_text("\n".join(lines) + "\n")
        return config

    def location_spec(self, **changes: object) -> dict[str, object]:
        """This server as a VCF ``BackupLocation`` (password login, ECDSA fingerprint); ``changes``
        replace fields, and a field changed to ``None`` is left out."""
        spec: dict[str, object] = {
            "server": self.host,
            "port": self.port,
            "protocol": "SFTP",
            "username": self.user,
            "password": self.password,
            "directoryPath": str(self.directory),
            "sshFingerprint": self.fingerprints["ecdsa"],
        }
        spec.update(changes)
        return {k: v for k, v in spec.items() if v is not None}

    def start(self) -> SshServer:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # the privilege separation directory
        self.fingerprints = {k: fingerprint(self.host_keys[k].with_suffix(".pub")) for k in self.key_types}
        before = len(self.log())
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [tool("sshd"), "-D", "-e", "-f", str(self._config())], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 15
        while f"Server listening on {self.host} port {self.port}" not in self.log()[before:]:
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sshd did not start on port {self.port}:\n{self.log()[before:]}")
            time.sleep(0.02)
        return self

    def restart(self, key_types: tuple[str, ...], host_keys: dict[str, Path] | None = None) -> SshServer:
        """The same port and directory, now offering ``key_types`` (from ``host_keys`` if given)."""
        self.stop(keep_directory=True)
        self.key_types, self.host_keys = key_types, host_keys or self.host_keys
        return self.start()

    def kill_children(self, sig: int = signal.SIGKILL) -> list[int]:
        """Signal the per-connection sshd processes (SIGKILL drops live connections, SIGSTOP freezes
        them); the listener is left alone. Returns their ids."""
        assert self._process is not None
        children = descendants(self._process.pid)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        return children

    def stop(self, *, keep_directory: bool = False) -> None:
        if self._process is not None:
            self.kill_children()
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if not keep_directory:
            shutil.rmtree(self.directory, ignore_errors=True)
