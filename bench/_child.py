"""One measured run of our pipeline, in a process of its own (started by ``bench/archive.py``):

    python -m bench._child create LEVEL DSN TREE OUT_DIR [PROFILE_FILE]
    python -m bench._child verify ARCHIVE

Prints one JSON object on stdout. ``seconds`` covers the call only (``archives.create``, with the
components built from ``ApplianceLayout``, or ``archives.verify``), not the interpreter's start.
``hwm_mb`` is this process's own peak RSS (``VmHWM``, which unlike ``ru_maxrss`` does not include what
the parent's memory left behind at exec); ``import_hwm_mb`` the same once the modules are imported.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

FQDN = "sfo-vcf01.sfo.rainpole.io"
PASSPHRASE = b"bench-passphrase-not-secret"


def hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    return 0.0


def create(level: int, dsn: str, tree: Path, out_dir: Path, profile: str | None) -> dict[str, object]:
    from sddc_backup.archive.entries import EntryType
    from sddc_backup.domain.clock import SystemClock
    from sddc_backup.services import archives
    from sddc_backup.services.appliance import ApplianceLayout
    from sddc_backup.services.components.postgres import PostgresComponent

    imported = hwm_mb()
    # pg_dump pass 1 (measuring) is timed on its own; the wrapper only observes, it changes nothing.
    pass_1: list[float] = []
    measure = getattr(PostgresComponent, "_measure", None)  # private: absent if it is renamed
    if measure is not None:

        def timed_measure(self: PostgresComponent, *args: object) -> object:
            begun = time.perf_counter()
            try:
                return measure(self, *args)
            finally:
                pass_1.append(time.perf_counter() - begun)

        PostgresComponent._measure = timed_measure  # type: ignore[method-assign,assignment]
    clock = SystemClock()
    layout = ApplianceLayout(paths=(tree,), postgres_dsn=dsn, scratch=out_dir / "scratch")
    out_dir.mkdir(parents=True, exist_ok=True)

    def run() -> archives.CreatedArchive:
        components = layout.components({}, clock.now().timestamp())
        return archives.create(out_dir, FQDN, clock, components, layout.paths, PASSPHRASE, level=level)

    begun = time.perf_counter()
    if profile:
        import cProfile

        with cProfile.Profile() as profiler:
            created = run()
        profiler.dump_stats(profile)
    else:
        created = run()
    seconds = time.perf_counter() - begun
    files = [m for m in created.summary.manifest.members if m.type is EntryType.FILE]
    return {
        "seconds": seconds,
        "pass_1_seconds": sum(pass_1) if pass_1 else None,
        "archive": str(created.path),
        "output_bytes": created.summary.size,
        "input_bytes": sum(m.size for m in files),
        "dump_bytes": sum(m.size for m in files if m.name.endswith("/database/sddc-postgres.bkp")),
        "members": len(created.summary.manifest.members),
        "import_hwm_mb": imported,
        "hwm_mb": hwm_mb(),
    }


def verify(archive: Path) -> dict[str, object]:
    from sddc_backup.services import archives

    begun = time.perf_counter()
    report = archives.verify(archive, PASSPHRASE)
    seconds = time.perf_counter() - begun
    return {
        "seconds": seconds,
        "archive_bytes": archive.stat().st_size,
        "content_bytes": sum(m.size for m in report.members),
        "members": len(report.members),
        "legacy": report.legacy,
        "hwm_mb": hwm_mb(),
    }


def main(argv: list[str]) -> int:
    if argv[0] == "create":
        profile = argv[5] if len(argv) > 5 else None
        result = create(int(argv[1]), argv[2], Path(argv[3]), Path(argv[4]), profile)
    else:
        result = verify(Path(argv[1]))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
