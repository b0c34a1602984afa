"""Generates the benchmark's appliance: a PostgreSQL database and a files tree of given sizes.

Run as a child of ``bench/archive.py`` (so that the benchmark's own process stays small: its peak RSS is
inherited by every process it starts, see bench/README.md):

    python -m bench._appliance db DSN BYTES       # tables whose plain pg_dump is about BYTES
    python -m bench._appliance files ROOT BYTES   # a configuration/log tree of about BYTES

Each prints one JSON object on stdout. Content is backup-like: text that compresses as logs, JSON and
configuration do (70 %), and random bytes that do not compress at all (30 %: key stores, packages,
rotated compressed logs; in the database, bytea).
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg

CHUNK = 1 << 20
SERVICES = [
    "domainmanager",
    "operationsmanager",
    "lcm",
    "commonsvcs",
    "sddc-manager-ui-app",
    "sddc-support",
    "vcf-services-platform",
    "nginx",
    "postgres",
    "sos",
    "solutionsmanager",
    "kubernetes-manager",
]
LEVELS = ["INFO"] * 12 + ["DEBUG"] * 6 + ["WARN"] * 2 + ["ERROR"]

# -- database ------------------------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE task (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, kind text NOT NULL,
    status text NOT NULL, resource_id uuid, description text, detail jsonb);
CREATE TABLE audit_log (id bigserial PRIMARY KEY, at timestamptz NOT NULL, username text,
    client_ip inet, operation text, message text);
CREATE TABLE artifact (id bigserial PRIMARY KEY, name text NOT NULL, sha512 text, content bytea);
CREATE INDEX task_created_at ON task (created_at);
CREATE INDEX audit_log_at ON audit_log (at);
"""
# table -> (share of the dump, INSERT over generate_series(%s, %s) g ('%%' is '%'), its COPY line's size)
TABLES = {
    "task": (
        0.45,
        """INSERT INTO task (created_at, kind, status, resource_id, description, detail)
        SELECT timestamptz '2026-01-01' + g * interval '7 seconds',
          (ARRAY['DEPLOY_HOST','UPGRADE_BUNDLE','ROTATE_PASSWORD','BACKUP','REPLACE_CERT'])[1 + g %% 5],
          CASE WHEN random() < 0.05 THEN 'FAILED' ELSE 'SUCCESSFUL' END, md5(g::text)::uuid,
          'Task ' || g || ' on esx-' || lpad((g %% 97)::text, 2, '0') || '.sfo.rainpole.io: '
            || repeat('subtask completed; ', 1 + g %% 7),
          jsonb_build_object('taskId', md5(g::text), 'progress', (random() * 100)::int,
            'resource', jsonb_build_object('type', 'HOST', 'fqdn', 'esx-' || g %% 97 || '.sfo.rainpole.io'),
            'errors', CASE WHEN g %% 17 = 0 THEN jsonb_build_array(jsonb_build_object('errorCode',
              'VCF_ERROR_' || g %% 40, 'message', 'Failed on ' || md5((g * 7)::text))) ELSE '[]' END,
            'log', repeat('ok ', g %% 23))
        FROM generate_series(%s::int, %s::int) g""",
        "concat_ws(E'\\t', id, created_at, kind, status, resource_id, description, detail)",
    ),
    "audit_log": (
        0.30,
        """INSERT INTO audit_log (at, username, client_ip, operation, message)
        SELECT timestamptz '2026-01-01' + g * interval '3 seconds',
          (ARRAY['administrator@vsphere.local','admin@local','svc-backup','vcf-operator'])[1 + g %% 4],
          ('10.0.' || g %% 256 || '.' || (random() * 254)::int + 1)::inet,
          (ARRAY['GET','PATCH','POST','DELETE'])[1 + (random() * 3)::int] || ' /v1/' ||
            (ARRAY['domains','hosts','clusters','credentials','backups'])[1 + g %% 5] || '/' || md5(g::text),
          'Request ' || md5((g + 1)::text) || ' completed with status ' || (200 + g %% 3)
            || '; user agent ' || repeat('VMware-client/9.0 ', 1 + g %% 3)
        FROM generate_series(%s::int, %s::int) g""",
        "concat_ws(E'\\t', id, at, username, client_ip, operation, message)",
    ),
    "artifact": (
        0.25,
        """INSERT INTO artifact (name, sha512, content)
        SELECT 'bundle-' || g || '.tar', md5(g::text),
          (SELECT string_agg(sha512(int8send(g) || int8send(i) || float8send(random())), ''::bytea)
           FROM generate_series(1, 128) i)
        FROM generate_series(%s::int, %s::int) g""",
        "concat_ws(E'\\t', id, name, sha512, content) || 'x'",  # COPY writes bytea as \\x...
    ),
}
PROBE_ROWS = 500
BATCH_BYTES = 64 << 20


def generate_database(dsn: str, target: int) -> dict[str, object]:
    """Creates and fills the tables: each gets its share of ``target`` bytes of plain-dump output."""
    estimate = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        for table, (share, insert, line) in TABLES.items():
            conn.execute(insert, (1, PROBE_ROWS))
            row = conn.execute(f"SELECT avg(octet_length({line}) + 1) FROM {table}").fetchone()  # noqa: S608
            per_row = float(row[0]) if row and row[0] else 1.0
            rows = max(PROBE_ROWS, math.ceil(share * target / per_row))
            batch = max(1, int(BATCH_BYTES / per_row))
            for start in range(PROBE_ROWS + 1, rows + 1, batch):
                conn.execute(insert, (start, min(rows, start + batch - 1)))
            estimate += int(rows * per_row)
        conn.execute("VACUUM (FREEZE, ANALYZE)")  # hint bits set now, not during the first pg_dump
        conn.execute("CHECKPOINT")
    return {"dump_bytes_estimate": estimate}


# -- files ---------------------------------------------------------------------------------------------


def _log_lines(rng: random.Random, count: int) -> list[str]:
    lines = []
    for n in range(count):
        svc = rng.choice(SERVICES)
        lines.append(
            f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}."
            f"{rng.randrange(1000):03d}Z {rng.choice(LEVELS):5} [{svc},{rng.getrandbits(32):08x}] "
            f"c.v.e.{svc.replace('-', '')}.{rng.choice(['TaskManager', 'Validator', 'RestClient'])} - "
            f"{rng.choice(['Task', 'Request', 'Subtask', 'Workflow'])} {rng.getrandbits(64):016x} "
            f"{rng.choice(['started', 'completed', 'is waiting for', 'failed on'])} "
            f"esx-{rng.randrange(97):02d}.sfo.rainpole.io in {rng.randrange(5000)} ms\n"
        )
    return lines


def _config_lines(rng: random.Random, count: int) -> list[str]:
    keys = ["url", "timeout", "retries", "enabled", "pool.size", "user", "path", "thumbprint", "port"]
    lines = []
    for _ in range(count):
        key = f"{rng.choice(SERVICES)}.{rng.choice(keys)}.{rng.choice(keys)}"
        value = rng.choice(
            [
                str(rng.randrange(65536)),
                rng.choice(["true", "false"]),
                f"/opt/vmware/{rng.choice(SERVICES)}",
                f"https://sfo-vcf01.sfo.rainpole.io:{rng.randrange(1024, 9999)}/v1",
                f"{rng.getrandbits(80):020x}",
            ]
        )
        lines.append(
            rng.choice([f"{key}={value}\n", f'  "{key}": "{value}",\n', f"<{key}>{value}</{key}>\n"])
        )
    return lines


def _write(path: Path, size: int, chunk: Callable[[int], bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        while size > 0:
            data = chunk(min(size, CHUNK))[:size]
            handle.write(data)
            size -= len(data)


def generate_files(root: Path, target: int, seed: int = 7) -> dict[str, object]:
    """Many small and some large files: 70 % of the bytes compressible text, 30 % random."""
    rng = random.Random(seed)  # noqa: S311 - content, not secrets
    logs, configs = _log_lines(rng, 50_000), _config_lines(rng, 20_000)

    def text(pool: list[str]) -> Callable[[int], bytes]:
        return lambda n: "".join(rng.choices(pool, k=max(1, n // 130))).encode()[:n]

    def randomness(n: int) -> bytes:
        return os.urandom(n)

    # (share of the bytes, smallest, largest, chunk maker, path pattern)
    kinds = [
        (0.12, 200, 64 << 10, text(configs), "etc/{svc}/conf.d/{d}/setting-{i}.{ext}"),
        (0.03, 1 << 10, 128 << 10, randomness, "etc/{svc}/keys/{d}/store-{i}.p12"),
        (0.58, 2 << 20, 48 << 20, text(logs), "var/log/{svc}/{svc}.log.{i}"),
        (0.27, 2 << 20, 40 << 20, randomness, "opt/vmware/{svc}/lib/{svc}-{i}.jar"),
    ]
    files = total = 0
    for share, low, high, chunk, pattern in kinds:
        budget = int(share * target)
        i = 0
        while budget > 0:
            size = min(budget, int(math.exp(rng.uniform(math.log(low), math.log(high)))))
            svc = SERVICES[i % len(SERVICES)]
            ext = rng.choice(["properties", "json", "xml", "conf"])
            _write(root / pattern.format(svc=svc, d=i // 1200, i=i, ext=ext), size, chunk)
            budget, total, files, i = budget - size, total + size, files + 1, i + 1
    for svc in SERVICES:  # links are members too
        link = root / "opt/vmware" / svc / "current"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("lib")
    return {"files_bytes": total, "files": files}


def main(argv: list[str]) -> int:
    what, where, size = argv[0], argv[1], int(argv[2])
    result = generate_database(where, size) if what == "db" else generate_files(Path(where), size)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
