"""PostgreSQL plumbing for the component: DSNs without their password, the client tools, and their runs."""

from __future__ import annotations

import io
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, cast
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from sddc_backup.services.components._common import component_failed
from sddc_backup.services.components._conninfo import ConninfoError, make_conninfo, parse_conninfo

if TYPE_CHECKING:  # imported where a connection is made: parsing and the client programs need no driver
    import psycopg

# No psqlrc, no password prompt, stop at the first error.
PSQL_OPTIONS = ("-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password")

STDERR_TAIL_BYTES = 2048
_URL_SCHEMES = ("postgresql", "postgres")


@dataclass(frozen=True)
class PgTarget:
    """A parsed DSN: the connection string without the password, and the password on the side."""

    conninfo: str
    password: str
    display: str

    @classmethod
    def parse(cls, dsn: str, component: str) -> PgTarget:
        try:
            params = parse_conninfo(dsn)
        except ConninfoError:
            raise component_failed(
                component, "the PostgreSQL database", "the DSN is not a valid PostgreSQL connection string"
            ) from None
        password = params.pop("password", "")
        conninfo = make_conninfo(params)
        dbname = params.get("dbname") or params.get("user") or "(default)"
        return cls(conninfo=conninfo, password=password, display=f"'{dbname}' ({conninfo})")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        import psycopg

        conninfo = self.conninfo
        if self.password:
            conninfo += " " + make_conninfo({"password": self.password})
        return psycopg.connect(conninfo, autocommit=True)

    def scrub(self, text: str) -> str:
        """``text`` with any form of the password replaced by ``***``."""
        if self.password:
            for form in {self.password, quote(self.password, safe="")}:
                text = text.replace(form, "***")
        return text


def with_dbname(dsn: str, dbname: str) -> str:
    """``dsn`` pointing at ``dbname``, in the same style (URL or key=value) and with the password."""
    parts = urlsplit(dsn)
    if parts.scheme in _URL_SCHEMES and parts.netloc is not None:
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "dbname"])
        return urlunsplit((parts.scheme, parts.netloc, "/" + quote(dbname, safe=""), query, parts.fragment))
    params = parse_conninfo(dsn)
    params["dbname"] = dbname
    return make_conninfo(params)


class PsqlError(Exception):
    """``run_psql`` failed; the message is psql's, with the password scrubbed."""


def run_psql(
    psql: Path, target: PgTarget, script: str, variables: Mapping[str, str] | None = None
) -> list[str]:
    """Run ``script`` with ``psql`` over ``target``, statement by statement (each commits, unless the
    script opens a transaction), stopping at the first error. ``:'name'`` and ``:"name"`` in it are
    ``variables[name]`` quoted by psql as a literal and as an identifier. Returns the rows printed,
    one string per row (unaligned, no headers). Raises ``PsqlError``.

    A client program rather than a driver: the server runs these statements during a restore, and a
    driver once imported stays in its memory for good (ADR 0022)."""
    args = [str(psql), *PSQL_OPTIONS, "-A", "-t", "-f", "-", f"--dbname={target.conninfo}"]
    for name, value in (variables or {}).items():
        args += ["-v", f"{name}={value}"]
    try:
        done = subprocess.run(
            args, input=script, capture_output=True, text=True, env=target.env(), check=False
        )
    except OSError as exc:
        raise PsqlError(f"cannot run {psql}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        tail = done.stderr.strip()[-STDERR_TAIL_BYTES:]
        raise PsqlError(target.scrub(f"psql exited with status {done.returncode}: {tail}"))
    return [row for row in done.stdout.splitlines() if row]


def find_tool(tool: str, bindir: Path | None, component: str) -> Path:
    """``bindir/tool``, else ``tool`` in ``pg_config --bindir``, else on PATH."""
    candidates: list[Path] = []
    if bindir is not None:
        candidates.append(bindir / tool)
    else:
        pg_config = shutil.which("pg_config")
        if pg_config is not None:
            try:
                out = subprocess.run(
                    [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30
                ).stdout
                candidates.append(Path(out.strip()) / tool)
            except (OSError, subprocess.SubprocessError):
                pass
        found = shutil.which(tool)
        if found is not None:
            candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    where = f"in {bindir}" if bindir is not None else "with pg_config --bindir or on PATH"
    raise component_failed(component, tool, f"the PostgreSQL client program is not found {where}")


def dump_options(pg_dump: Path) -> list[str]:
    """Options that make two runs of this ``pg_dump`` over one snapshot write the same bytes.

    ``pg_dump`` 15.14, 16.10, 17.6 and later write ``\\restrict <key>`` into plain dumps with a random
    key unless given one: both passes get the same key, a fresh one per backup (so that the server
    cannot predict it). Statistics (``pg_dump`` 18) are read outside the snapshot: they are left out.
    """
    supported = _help_text(pg_dump)
    options = []
    if "--restrict-key" in supported:
        options.append(f"--restrict-key={secrets.token_hex(24)}")
    if "--no-statistics" in supported:
        options.append("--no-statistics")
    return options


@lru_cache(maxsize=8)
def _help_text(program: Path) -> str:
    try:
        return subprocess.run(
            [str(program), "--help"], check=False, capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


class PgProcess:
    """A client program whose stdout is a pipe and whose stderr goes to an anonymous file for its tail.

    With ``fed``, its standard input is a pipe that the caller writes (``stdin_fd``), and its output
    is thrown away instead (psql loading a dump prints only what the dump's queries return), unless
    ``answers`` keeps it (psql answering the queries the caller sends).
    """

    def __init__(
        self, args: Sequence[str], env: dict[str, str], *, fed: bool = False, answers: bool = False
    ) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        try:
            self.proc = subprocess.Popen(
                list(args),
                stdin=subprocess.PIPE if fed else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL if fed and not answers else subprocess.PIPE,
                stderr=self._stderr,
                env=env,
            )
        except BaseException:
            self._stderr.close()
            raise
        # bufsize=-1 (the default) makes stdout a BufferedReader: read(n) returns n bytes unless at EOF.
        self.stdout = cast(io.BufferedReader, self.proc.stdout)

    @property
    def stdin_fd(self) -> int:
        assert self.proc.stdin is not None, "the process was not started with fed=True"
        return self.proc.stdin.fileno()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def finish(self) -> int:
        """Close stdin (the end of the input) and stdout, wait for the exit status."""
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        return self.proc.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish()

    def failure(self, returncode: int) -> str:
        """What went wrong, with the end of stderr; call after the process has exited."""
        self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(0, self._stderr.tell() - STDERR_TAIL_BYTES))
        tail = self._stderr.read().decode("utf-8", "replace").strip()
        if returncode < 0:
            try:
                status = f"was killed by signal {signal.Signals(-returncode).name}"
            except ValueError:
                status = f"was killed by signal {-returncode}"
        else:
            status = f"exited with status {returncode}"
        return f"{status}: {tail}" if tail else status

    def close(self) -> None:
        self._stderr.close()
