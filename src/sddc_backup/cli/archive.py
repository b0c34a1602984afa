"""``sddc-backup archive …``: work on backup files offline, with no server.

The passphrase comes from ``--passphrase-file`` (its first line, as ``openssl enc -pass file:``
reads it) or from the ``SDDC_BACKUP_PASSPHRASE`` environment variable, never from an argument.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer

from sddc_backup.cli.common import ConfigOption, JsonOption, run
from sddc_backup.domain.errors import InvalidInputError

if TYPE_CHECKING:  # imported by the commands that use them: the others start without the archive code
    from sddc_backup.archive.reader import ArchiveReport
    from sddc_backup.services.archives import CreatedArchive

PASSPHRASE_ENV = "SDDC_BACKUP_PASSPHRASE"  # noqa: S105 - the name of a variable, not a secret

PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file", "-p", help=f"File whose first line is the passphrase (or set {PASSPHRASE_ENV})."
    ),
]
Output = Annotated[Path, typer.Option("--output", "-o", help="Where to write.")]


class BackupMaker(Protocol):
    async def create(self, out_dir: Path, passphrase: bytes) -> CreatedArchive: ...


class ArchiveCommands(Protocol):
    def backup_maker(self, config: Path | None) -> AbstractAsyncContextManager[BackupMaker]: ...


def read_passphrase(path: Path | None) -> bytes:
    if path is not None:
        try:
            # The first line without its newline, exactly as openssl enc -pass file: reads it.
            lines = path.read_bytes().split(b"\n")
        except OSError as exc:
            raise InvalidInputError(
                f"The passphrase file {path} cannot be read: {exc.strerror}.",
                error_code="PASSPHRASE_FILE_UNREADABLE",
                remediation="Check the path and its permissions.",
            ) from exc
        if lines and lines[0]:
            return lines[0]
    elif os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV].encode()
    raise InvalidInputError(
        "No passphrase was given.",
        error_code="PASSPHRASE_MISSING",
        remediation=f"Use --passphrase-file FILE (first line), or set {PASSPHRASE_ENV}.",
    )


def report_json(path: Path, report: ArchiveReport) -> dict[str, Any]:
    return {
        "file": str(path),
        "intact": True,
        "legacy": report.legacy,
        "base": report.base,
        "members": len(report.members),
        "bytes": sum(m.size for m in report.members),
    }


def register(cli: typer.Typer, local: ArchiveCommands) -> None:
    """Add the ``archive`` command group to ``cli``."""
    group = typer.Typer(help="Verify, inspect, decrypt, encrypt and create backup files (no server needed).")
    cli.add_typer(group, name="archive")

    async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    @group.command()
    def verify(file: Path, passphrase_file: PassphraseFile = None, as_json: JsonOption = False) -> None:
        """Decrypt and check every member against the manifest; exit 0 only if all is intact."""
        from sddc_backup.services import archives

        report = run(lambda: call(archives.verify, file, read_passphrase(passphrase_file)))
        result = report_json(file, report)
        if as_json:
            typer.echo(json.dumps(result, indent=2))
        elif report.legacy:
            typer.echo(f"{file}: intact (legacy, no manifest): {result['members']} members checked")
        else:
            typer.echo(f"{file}: intact: {result['members']} members match the manifest")

    @group.command()
    def inspect(file: Path, passphrase_file: PassphraseFile = None) -> None:
        """Print the metadata and the manifest as JSON (after checking the whole archive)."""
        from sddc_backup.services import archives

        report = run(lambda: call(archives.verify, file, read_passphrase(passphrase_file)))
        document = {
            **report_json(file, report),
            "metadata": report.metadata,
            "manifest": report.manifest.to_json() if report.manifest else None,
        }
        typer.echo(json.dumps(document, indent=2))

    @group.command()
    def decrypt(file: Path, output: Output, passphrase_file: PassphraseFile = None) -> None:
        """Write the decrypted .tar.gz; it appears only once the whole archive has been checked."""
        from sddc_backup.services import archives

        report = run(lambda: call(archives.decrypt, file, read_passphrase(passphrase_file), output))
        note = " (legacy, no manifest)" if report.legacy else ""
        typer.echo(f"{output}: decrypted and checked{note}")

    @group.command()
    def encrypt(source: Path, output: Output, passphrase_file: PassphraseFile = None) -> None:
        """Encrypt a .tar.gz, or archive a decrypted backup folder again with a fresh manifest."""
        from sddc_backup.services import archives

        digest = run(
            lambda: call(
                archives.encrypt, source, read_passphrase(passphrase_file), output, mtime=time.time()
            )
        )
        typer.echo(f"{output}: encrypted, sha256 {digest} (sidecar {output.name}.sha256)")

    @group.command()
    def create(output: Output, passphrase_file: PassphraseFile = None, config: ConfigOption = None) -> None:
        """Take a full backup of the configured appliance into a local directory."""

        async def act() -> CreatedArchive:
            passphrase = read_passphrase(passphrase_file)
            async with local.backup_maker(config) as maker:
                return await maker.create(output, passphrase)

        created = run(act)
        typer.echo(f"{created.path}: {created.summary.size} bytes, sha256 {created.summary.sha256}")
