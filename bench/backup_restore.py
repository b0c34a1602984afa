"""Benchmark: a full backup to loopback SFTP and a full restore by name, ours against the reference.

    .venv/bin/python -m bench.backup_restore [--size-mib 1024] [--repeat 1] [--local-restore]
        [--py-spy DIR] [--json] [--tmpdir DIR]

Generates an appliance (a PostgreSQL database and three directory trees, half of ``--size-mib`` each,
plus a small SQLite file), starts an OpenSSH sshd on 127.0.0.1 with a throwaway login, and the real
server (``sddc-backup serve``) protecting that appliance and configured to back up to the sshd. Then,
in one run, on the same data:

- backup, reference: ``pg_dump`` into a staging folder, ``tar -cz | openssl enc -aes-256-cbc -md
  sha256`` into a local file, then OpenSSH ``sftp -b`` ``put``;
- backup, ours: ``POST /v1/backups/tasks``, timed until the task is ``SUCCESSFUL``;
- restore, ours: ``POST /v1/restores/tasks`` with the bare file name on the location, timed until
  ``Successful``;
- restore, reference: ``sftp -b`` ``get``, ``openssl enc -d | tar -xz`` into a scratch folder, ``psql
  --single-transaction -f`` into a new database, then the trees and the database renamed into place
  and the replaced ones removed.

It prints the wall times, the ratios (reference / ours: above 1 is ours faster), the peak RSS of the
server process (VmHWM, reset before each run) and of the processes it starts, where the CPU time
went, and the stages of our tasks. Targets are printed with PASS/MISS; it always exits 0 when it
could measure. Everything it creates goes at the end, also on Ctrl-C or SIGTERM (exit status 130).
See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.http import Api  # noqa: E402
from tests.support.postgres import PostgresCluster  # noqa: E402
from tests.support.procs import descendants, stat_fields  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402
from tests.support.sshd import Account, SshServer, ensure_account, make_host_keys, retire_account, tool  # noqa: E402

from bench.archive import generate  # noqa: E402

MB = 1e6
PASSPHRASE = "VMw@re1!VMw@re1!"
ELEMENTS = [{"resourceType": "SDDC_MANAGER"}]
TREES = ("etc", "var", "opt")  # what bench._appliance writes under its root: three protected trees
SQLITE = "inventory.db"
DUMP = "sddc-postgres.bkp"
CIPHER = "aes256-gcm@openssh.com"  # ours offers it first; OpenSSH gets it with -c, as in bench/storage
TARGETS = {"backup": 2.5, "restore": 1.5}  # reference seconds / ours seconds
TARGET_RSS_MB = 200.0  # the service's VmHWM in each phase: the server process plus its upload process
OWN_CHILD = Path(sys.executable).name[:15]  # the comm of the server's own Python child (a backup's upload)
POLL = 0.1  # seconds between task polls
SAMPLE = 0.2  # seconds between /proc samples
TICK = os.sysconf("SC_CLK_TCK")

# $1 pg_dump, $2 DSN, $3 staging dir, $4 archive folder, $5 appliance root, $6 local archive,
# $7 sftp batch file, $8 user@host, then sftp and its options. The passphrase comes in $P.
REFERENCE_BACKUP = r"""set -euo pipefail
pg_dump=$1 dsn=$2 stage=$3 base=$4 root=$5 out=$6 batch=$7 destination=$8; shift 8
t0=$EPOCHREALTIME
"$pg_dump" --format=plain --no-password --dbname="$dsn" --file="$stage/$base/sddc-postgres.bkp"
t1=$EPOCHREALTIME
tar -cz -C "$stage" "$base" -C "$root" etc var opt inventory.db \
  | openssl enc -aes-256-cbc -md sha256 -pass env:P -out "$out"
t2=$EPOCHREALTIME
"$@" -b "$batch" "$destination" >/dev/null
t3=$EPOCHREALTIME
echo "$t0 $t1 $t2 $t3"
"""
# $1 psql bindir, $2 admin DSN (postgres database), $3 new database's DSN, $4 live database, $5 new
# database, $6 scratch dir, $7 archive folder, $8 appliance root, $9 local archive, $10 sftp batch file,
# $11 user@host, then sftp and its options.
REFERENCE_RESTORE = r"""set -euo pipefail
bin=$1 admin=$2 newdsn=$3 live=$4 new=$5 scratch=$6 base=$7 root=$8 file=$9
batch=${10} destination=${11}; shift 11
psql() { "$bin/psql" -X -q -v ON_ERROR_STOP=1 --no-password "$@"; }
t0=$EPOCHREALTIME
"$@" -b "$batch" "$destination" >/dev/null
t1=$EPOCHREALTIME
mkdir "$scratch"
openssl enc -d -aes-256-cbc -md sha256 -pass env:P -in "$file" | tar -xz -C "$scratch"
t2=$EPOCHREALTIME
psql -d "$admin" -c "CREATE DATABASE \"$new\" TEMPLATE template0"
psql --single-transaction -f "$scratch/$base/sddc-postgres.bkp" -d "$newdsn" >/dev/null
t3=$EPOCHREALTIME
for t in etc var opt inventory.db; do
  mv "$root/$t" "$root/.$t.old" && mv "$scratch/$t" "$root/$t"
done
psql -d "$admin" -c "ALTER DATABASE \"$live\" RENAME TO \"${live}_old\"" \
  -c "ALTER DATABASE \"$new\" RENAME TO \"$live\"" -c "DROP DATABASE \"${live}_old\""
rm -rf "$root/.etc.old" "$root/.var.old" "$root/.opt.old" "$root/.inventory.db.old" "$scratch" "$file"
t4=$EPOCHREALTIME
echo "$t0 $t1 $t2 $t3 $t4"
"""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- processes -----------------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    return stat_fields(f"/proc/{pid}/stat")


def _tree(root: int) -> list[int]:
    """``root`` and its live descendants."""
    return [root, *descendants(root)]


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and its descendants, live ones and the ones that were waited for."""
    ticks = 0
    for pid in _tree(root):
        if (fields := _stat(pid)) is not None:
            ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / TICK


def own_cpu(pid: int) -> float:
    fields = _stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / TICK


def status_kb(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def reset_hwm(pid: int) -> None:
    """VmHWM back to the current RSS (Linux: 5 > /proc/PID/clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclass
class Seen:
    comm: str
    first: float
    last: float
    hwm_kb: int = 0


@dataclass
class Sampler:
    """Samples a process tree from a thread: each descendant's name, when it was seen and its VmHWM;
    with ``watch_root``, also the root's VmRSS over time and the CPU ticks of each of its threads."""

    root: int
    watch_root: bool = False
    seen: dict[int, Seen] = field(default_factory=dict)
    rss: list[tuple[float, int]] = field(default_factory=list)  # (time.time(), VmRSS kB) of the root
    threads: dict[int, list[int]] = field(default_factory=dict)  # tid -> [first ticks, last ticks]
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._sample()  # the threads' starting ticks, before the work starts
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE):
            self._sample()

    def _sample(self) -> None:
        now = time.time()
        for pid in _tree(self.root):
            if pid == self.root:
                if self.watch_root:
                    self._watch(now)
                continue
            with contextlib.suppress(OSError):
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                seen = self.seen.setdefault(pid, Seen(comm, now, now))
                seen.comm, seen.last = comm, now
                seen.hwm_kb = max(seen.hwm_kb, status_kb(pid, "VmHWM"))

    def _watch(self, now: float) -> None:
        self.rss.append((now, status_kb(self.root, "VmRSS")))
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{self.root}/task").iterdir():
                with contextlib.suppress(OSError, IndexError):
                    fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                    ticks = int(fields[11]) + int(fields[12])
                    self.threads.setdefault(int(task.name), [ticks, ticks])[1] = ticks

    def thread_cpu(self) -> list[tuple[str, float]]:
        """CPU seconds of the root's threads during the sampling, busiest first ("main": the event
        loop's; a thread that ended between two samples loses its last one)."""
        spent = [
            ("main" if tid == self.root else f"thread {i}", (last - first) / TICK)
            for i, (tid, (first, last)) in enumerate(sorted(self.threads.items()))
        ]
        return sorted((t for t in spent if t[1] >= 0.05), key=lambda t: -t[1])

    def peak_at(self) -> float | None:
        """When the root's RSS was highest (time.time())."""
        return max(self.rss, key=lambda r: r[1])[0] if self.rss else None

    def largest(self) -> tuple[str, float]:
        """The largest single process seen: its name and VmHWM in MB."""
        if not self.seen:
            return "-", 0.0
        big = max(self.seen.values(), key=lambda s: s.hwm_kb)
        return big.comm, big.hwm_kb * 1024 / MB

    def peaks(self) -> dict[str, float]:
        """The largest VmHWM (MB) of each program seen."""
        found: dict[str, float] = {}
        for s in self.seen.values():
            found[s.comm] = max(found.get(s.comm, 0.0), s.hwm_kb * 1024 / MB)
        return found


@dataclass
class Cpu:
    """CPU seconds, at one moment, of the processes that do the work."""

    main: float  # ours: the server process itself; reference: unused (the rusage of the pipeline)
    main_children: float  # ours: pg_dump, psql (waited for by the server)
    postgres: float
    sshd: float
    machine: float  # every CPU of the machine, busy (not idle or waiting for I/O)

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(*(a - b for a, b in zip(self.values(), other.values(), strict=True)))

    def values(self) -> tuple[float, float, float, float, float]:
        return self.main, self.main_children, self.postgres, self.sshd, self.machine


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / TICK


# -- the appliance ---------------------------------------------------------------------------------------


@dataclass
class Bench:
    work: Path
    cluster: PostgresCluster
    dsn: str
    root: Path
    sftp: SshServer
    app: ServerProcess | None = None
    api: Api | None = None
    token: str = ""

    @property
    def trees(self) -> list[Path]:
        return [self.root / t for t in TREES]

    @property
    def sqlite(self) -> Path:
        return self.root / SQLITE

    def psql(self, command: str, database: str = "appliance") -> str:
        url = self.dsn.rsplit("/", 1)[0] + "/" + database
        cmd = [str(self.cluster.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url]
        return subprocess.run(cmd, input=command, check=True, capture_output=True, text=True).stdout

    def postmaster(self) -> int:
        return int((self.cluster.data / "postmaster.pid").read_text().split()[0])

    def cpu(self) -> Cpu:
        main = self.app.proc.pid if self.app and self.app.proc else None
        own = own_cpu(main) if main else 0.0
        children = tree_cpu(main) - own if main else 0.0
        assert self.sftp._process is not None
        postgres, sshd = tree_cpu(self.postmaster()), tree_cpu(self.sftp._process.pid)
        return Cpu(own, children, postgres, sshd, machine_cpu())


def make_sqlite(path: Path, rows: int = 20_000) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE host (id INTEGER PRIMARY KEY, fqdn TEXT, state TEXT, detail TEXT)")
        conn.executemany(
            "INSERT INTO host (fqdn, state, detail) VALUES (?, ?, ?)",
            [(f"esx-{i:05d}.sfo.rainpole.io", "ASSIGNED", os.urandom(24).hex()) for i in range(rows)],
        )
    conn.close()


def snapshot(bench: Bench) -> dict[str, Any]:
    """What a restore must bring back: each table's row count and content hash, each path's type, size,
    mode, owner, mtime and link target, and the SQLite dump's SHA-256 (files' contents: not hashed)."""
    tables = bench.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").split()
    data = {
        t: bench.psql(f"SELECT count(*), sum(hashtext(x::text)::bigint) FROM {t} x").strip()  # noqa: S608
        for t in tables
    }
    files: dict[str, Any] = {}
    for tree in bench.trees:
        for path in [tree, *tree.rglob("*")]:
            st = path.lstat()
            link = str(path.readlink()) if path.is_symlink() else None
            files[str(path.relative_to(bench.root))] = (
                st.st_mode,
                st.st_uid,
                st.st_size if path.is_file() else 0,
                st.st_mtime_ns,
                link,
            )
    with sqlite3.connect(f"{bench.sqlite.as_uri()}?mode=ro", uri=True) as conn:
        dump = "\n".join(conn.iterdump())
    conn.close()
    return {"postgres": data, "files": files, "sqlite": hashlib.sha256(dump.encode()).hexdigest()}


def differences(before: dict[str, Any], after: dict[str, Any], *, whole_seconds: bool = False) -> str:
    """'OK', or what differs. ``whole_seconds``: file times compared to the second (GNU tar's default
    format keeps no more)."""

    def files(snap: dict[str, Any]) -> dict[str, Any]:
        if not whole_seconds:
            return dict(snap["files"])
        return {n: (*v[:3], v[3] // 10**9, v[4]) for n, v in snap["files"].items()}

    wrong = [part for part in ("postgres", "sqlite") if before[part] != after[part]]
    b, a = files(before), files(after)
    names = sorted({n for n in b.keys() | a.keys() if b.get(n) != a.get(n)})
    if names:
        wrong.append(f"{len(names)} paths (e.g. {names[:3]})")
    return "OK" if not wrong else "MISMATCH: " + ", ".join(wrong)


def tree_bytes(bench: Bench) -> tuple[int, int]:
    count = size = 0
    for tree in bench.trees:
        for path in tree.rglob("*"):
            if path.is_file() and not path.is_symlink():
                count, size = count + 1, size + path.stat().st_size
    return count, size


# -- the reference ---------------------------------------------------------------------------------------


def sftp_command(bench: Bench, known_hosts: Path) -> list[str]:
    """user@host, then sftp and its options (the scripts add -b and the destination)."""
    s = bench.sftp
    cmd = [tool("sftp"), "-F", "/dev/null", "-P", str(s.port), "-c", CIPHER, "-i", str(s.client_key)]
    cmd += ["-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes"]
    cmd += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "LogLevel=ERROR"]
    return [f"{s.user}@{s.host}", *cmd]


def pin_host_key(bench: Bench) -> Path:
    """A known_hosts file holding the sshd's ECDSA key: OpenSSH checks it strictly."""
    key = bench.sftp.host_keys["ecdsa"].with_suffix(".pub").read_text().split()[:2]
    known = bench.work / "known_hosts"
    known.write_text(f"[{bench.sftp.host}]:{bench.sftp.port} {' '.join(key)}\n")
    return known


def run_script(script: str, args: list[str], root: int | None = None) -> dict[str, Any]:
    """Runs ``bash -c script``; returns its wall seconds, its stamps, its CPU (rusage of everything it
    waited for) and its largest process (sampled)."""
    env = {**os.environ, "P": PASSPHRASE}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        begun = time.perf_counter()
        proc = subprocess.Popen(
            ["bash", "-c", script, "bash", *args], stdout=out, stderr=err, env=env, start_new_session=True
        )
        try:
            with Sampler(proc.pid) as sampler:
                _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                proc.wait()
            raise
        seconds = time.perf_counter() - begun
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"the reference exited with {proc.returncode}: {err.read()[-3000:].decode()}")
        stamps = [float(s) for s in out.read().split()]
    comm, rss = sampler.largest()
    return {
        "seconds": seconds,
        "steps": [b - a for a, b in itertools.pairwise(stamps)],
        "cpu": usage.ru_utime + usage.ru_stime,
        "largest": comm,
        "rss_mb": rss,
        "by_process": sampler.peaks(),
    }


def reference_backup(bench: Bench, known: Path) -> dict[str, Any]:
    stage, base = bench.work / "reference-stage", "vcf-backup-reference"
    (stage / base).mkdir(parents=True)
    out = bench.work / "reference.tar.gz"
    batch = bench.work / "reference-put"
    remote = bench.sftp.account.new_directory() / out.name
    batch.write_text(f'put "{out}" "{remote}"\n')
    pg_dump = str(bench.cluster.bindir / "pg_dump")
    args = [pg_dump, bench.dsn, str(stage), base, str(bench.root), str(out), str(batch)]
    before = bench.cpu()
    result = run_script(REFERENCE_BACKUP, [*args, *sftp_command(bench, known)])
    result["cpu_split"] = bench.cpu() - before
    result["dump_bytes"] = (stage / base / DUMP).stat().st_size
    result["archive_bytes"] = out.stat().st_size
    result["remote"] = str(remote)
    out.unlink()
    shutil.rmtree(stage)
    return result


def reference_restore(bench: Bench, known: Path, remote: str) -> dict[str, Any]:
    local, scratch = bench.work / "reference-download.tar.gz", bench.work / "reference-scratch"
    batch = bench.work / "reference-get"
    batch.write_text(f'get "{remote}" "{local}"\n')
    admin = bench.dsn.rsplit("/", 1)[0] + "/postgres"
    new = "appliance_reference"
    new_dsn = bench.dsn.rsplit("/", 1)[0] + "/" + new
    args = [str(bench.cluster.bindir), admin, new_dsn, "appliance", new, str(scratch), "vcf-backup-reference"]
    args += [str(bench.root), str(local), str(batch)]
    before = bench.cpu()
    result = run_script(REFERENCE_RESTORE, [*args, *sftp_command(bench, known)])
    result["cpu_split"] = bench.cpu() - before
    return result


# -- ours ----------------------------------------------------------------------------------------------


def _running_progress(task: dict[str, Any]) -> int | None:
    for sub in task.get("subTasks", []):
        for stage in sub.get("stages", []):
            if stage.get("progress") and stage["status"].upper() in ("IN_PROGRESS", "IN PROGRESS"):
                return int(stage["progress"]["completed"])
    return None


def follow(
    bench: Bench, task_id: str, prefix: str, begun: float
) -> tuple[dict[str, Any], float, list[tuple[float, int]]]:
    """Polls the task until it ends; returns it, the wall seconds since ``begun``, and the progress
    timeline [(seconds, bytes)] of its running stage."""
    assert bench.api is not None
    timeline: list[tuple[float, int]] = []
    while True:
        r = bench.api.request("GET", f"{prefix}/{task_id}", bench.token)
        r.raise_for_status()
        task: dict[str, Any] = r.json()
        now = time.perf_counter() - begun
        if task["status"].upper() in ("SUCCESSFUL", "FAILED", "CANCELLED"):
            return task, now, timeline
        if (done := _running_progress(task)) is not None:
            timeline.append((now, done))
        time.sleep(POLL)


def _when(stamp: str | None) -> float | None:
    return None if stamp is None else datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def stages(task: dict[str, Any], started: float) -> list[tuple[str, str, float, float]]:
    """(subtask, stage, start, end) of every stage, in seconds since ``started`` (a time.time()), from
    the task's own timestamps (milliseconds)."""
    rows = []
    for sub in task.get("subTasks", []):
        for stage in sub.get("stages", []):
            start = _when(stage["creationTimestamp"]) or started
            end = _when(stage.get("completionTimestamp")) or start
            rows.append((sub["name"], stage["name"], start - started, end - started))
    return rows


def rate(timeline: list[tuple[float, int]], start: float, end: float) -> float | None:
    """MB/s of the progress counter between two moments (the samples nearest inside them)."""
    inside = [(t, n) for t, n in timeline if start <= t <= end]
    if len(inside) < 2 or inside[-1][0] - inside[0][0] < 0.5:
        return None
    return (inside[-1][1] - inside[0][1]) / MB / (inside[-1][0] - inside[0][0])


@contextlib.contextmanager
def py_spy(pid: int, out: Path | None) -> Iterator[None]:
    """``py-spy record`` of the server while the block runs: collapsed stacks per thread, at 100 Hz."""
    if out is None:
        yield
        return
    spy = shutil.which("py-spy") or "py-spy"
    # --idle: waiting threads are sampled too, so that wall time can be attributed, not only CPU time.
    cmd = [spy, "record", "--pid", str(pid), "--rate", "100", "--threads", "--idle", "--nonblocking"]
    cmd += ["--format", "raw", "--output", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)  # it attaches
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ours_phase(
    bench: Bench, path: str, body: dict[str, Any], prefix: str, profile: Path | None
) -> dict[str, Any]:
    assert bench.api is not None and bench.app is not None and bench.app.proc is not None
    pid = bench.app.proc.pid
    reset_hwm(pid)
    baseline = status_kb(pid, "VmRSS") * 1024 / MB
    before = bench.cpu()
    with py_spy(pid, profile), Sampler(pid, watch_root=True) as sampler:
        begun, started = time.perf_counter(), time.time()
        r = bench.api.request("POST", path, bench.token, json=body)
        if r.status_code != 202:
            raise RuntimeError(f"POST {path}: {r.status_code} {r.text}")
        task, seconds, timeline = follow(bench, r.json()["id"], prefix, begun)
    cpu = bench.cpu() - before
    if task["status"].upper() != "SUCCESSFUL":
        raise RuntimeError(f"{path} ended {task['status']}: {json.dumps(task.get('errors'))[:3000]}")
    full = bench.api.request("GET", f"/v1/tasks/{task['id']}", bench.token).json()
    steps = stages(full, started)
    comm, child_rss = sampler.largest()
    children = [
        {"comm": s.comm, "start": s.first - started, "end": s.last - started, "rss_mb": s.hwm_kb * 1024 / MB}
        for s in sorted(sampler.seen.values(), key=lambda s: s.first)
        if s.comm in ("pg_dump", "psql")
    ]
    peak = sampler.peak_at()
    at = None if peak is None else peak - started
    last = steps[-1][3] if steps else 0.0
    peak_stage = next(
        (f"{st} ({sub})" for sub, st, a, b in steps if at is not None and a <= at <= b),
        "after the task" if at is not None and at > last else "-",
    )
    return {
        "seconds": seconds,
        "task_seconds": (_when(full["completionTimestamp"]) or 0) - (_when(full["creationTimestamp"]) or 0),
        "rss_mb": status_kb(pid, "VmHWM") * 1024 / MB,
        "own_child_rss_mb": sampler.peaks().get(OWN_CHILD, 0.0),
        "rss_baseline_mb": baseline,
        "rss_peak_at": at,
        "rss_peak_stage": peak_stage,
        "child_largest": comm,
        "child_rss_mb": child_rss,
        "cpu": cpu.main + cpu.main_children,
        "cpu_split": cpu,
        "threads": sampler.thread_cpu(),
        "stages": steps,
        "children": children,
        "timeline": timeline,
        "task_id": task["id"],
    }


def start_server(bench: Bench) -> None:
    app = ServerProcess(bench.work / "data")
    app.base_env = {
        "SDDC_BACKUP_PATHS": json.dumps([str(t) for t in bench.trees]),
        "SDDC_BACKUP_POSTGRES_DSN": bench.dsn,
        "SDDC_BACKUP_SQLITE_PATHS": json.dumps([str(bench.sqlite)]),
    }
    bench.app = app
    app.start()
    bench.api = Api(app)
    bench.token = bench.api.token()
    spec = {"backupLocations": [bench.sftp.location_spec()], "encryption": {"passphrase": PASSPHRASE}}
    r = bench.api.request("PUT", "/v1/system/backup-configuration", bench.token, json=spec)
    task = bench.api.wait_task(r.json()["id"], bench.token, timeout=60)
    if task["status"] != "SUCCESSFUL":
        raise RuntimeError(f"configuring the SFTP location failed: {task}")


# -- the report ------------------------------------------------------------------------------------------


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = zip(row, widths, strict=True)
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(cells)))


def report(result: dict[str, Any]) -> None:
    inp, rounds, summary = result["input"], result["rounds"], result["summary"]
    dump, files, sqlite = (inp[k] / MB for k in ("dump_bytes", "files_bytes", "sqlite_bytes"))
    print(f"\nAppliance: {dump:.1f} MB of pg_dump (plain), {files:.1f} MB in {inp['files']} files in", end="")
    print(f" {len(TREES)} trees, and a {sqlite:.1f} MB SQLite file; generated in", end="")
    print(f" {inp['generation_seconds']:.0f} s. {os.cpu_count()} CPUs, load average", end="")
    print(f" {result['load']['start']:.2f} at the start and {result['load']['end']:.2f} at the end.")
    print(f"SFTP: {result['sshd']} sshd on 127.0.0.1, {CIPHER} for both. Code: {result['code']}.")
    if len(rounds) > 1:
        print(f"{len(rounds)} rounds: seconds are medians, RSS the largest; the details are round 1's.")
    first = rounds[0]
    rows = [["phase", "reference s", "ours s", "ratio", "target", "", "ours RSS MB", f"<{TARGET_RSS_MB:g}"]]
    rows[0] += ["ours children MB", "reference RSS MB"]
    for phase, target in TARGETS.items():
        r, o, m = first["reference"][phase], first["ours"][phase], summary[phase]
        ratio = m["reference"] / m["ours"]
        rows.append([phase, f"{m['reference']:.2f}", f"{m['ours']:.2f}", f"{ratio:.2f}x"])
        rows[-1] += [f">={target:g}x", "PASS" if ratio >= target else "MISS"]
        rows[-1] += [f"{m['rss_mb']:.1f}", "PASS" if m["rss_mb"] < TARGET_RSS_MB else "MISS"]
        rows[-1] += [f"{o['child_rss_mb']:.1f} ({o['child_largest']})", f"{r['rss_mb']:.1f} ({r['largest']})"]
    if "restore_local" in first["ours"]:
        o = first["ours"]["restore_local"]
        seconds = statistics.median(r["ours"]["restore_local"]["seconds"] for r in rounds)
        rows.append(["restore from /tmp (info)", "", f"{seconds:.2f}", "", "", "", f"{o['rss_mb']:.1f}", ""])
        rows[-1] += [f"{o['child_rss_mb']:.1f} ({o['child_largest']})", ""]
    print()
    _table(rows)
    _notes(rounds)
    _cpu_table(first)
    _reference_detail(first["reference"])
    for phase, run in first["ours"].items():
        _ours_detail(phase, run)
    print()
    for i, r in enumerate(rounds, start=1):
        checks = "; ".join(f"after {what} {verdict}" for what, verdict in r["checks"].items())
        print(f"Checks, round {i}: {checks}.")
    print("(The reference's file times are compared to the second: GNU tar's format keeps no more.)")


def _notes(rounds: list[dict[str, Any]]) -> None:
    if len(rounds) > 1:
        print("\nEach round:")
        for phase in TARGETS:
            for who in ("reference", "ours"):
                each = ", ".join(f"{r[who][phase]['seconds']:.2f}" for r in rounds)
                print(f"  {phase}, {who}, seconds: {each}")
            each = ", ".join(
                f"{r['ours'][phase]['rss_baseline_mb']:.0f} -> {r['ours'][phase]['rss_mb']:.0f}"
                f" + {r['ours'][phase]['own_child_rss_mb']:.0f}"
                for r in rounds
            )
            print(f"  {phase}, ours, server RSS MB at the start -> peak + its upload process's peak: {each}")
    print(f"""
ratio: reference seconds over ours (above 1: ours is faster). ours s: from the POST until a poll (every
{POLL:g} s) sees the task end. ours RSS: the server process's own VmHWM, reset before each phase, plus
the VmHWM of its own Python child (a backup's upload process), when one ran: the whole service.
ours children and reference: the largest single process seen (VmHWM, sampled every {SAMPLE:g} s).
None counts the PostgreSQL server or sshd.
""")


def _cpu_table(first: dict[str, Any]) -> None:
    rows = [
        ["CPU seconds", "wall", "pipeline", "of which children", "postgres", "sshd", "other", "archive MB"]
    ]
    for phase in ("backup", "restore", "restore_local"):
        for who in ("reference", "ours"):
            if phase not in first[who]:
                continue
            r = first[who][phase]
            split = r["cpu_split"]
            kids = f"{split['main_children']:.1f}" if who == "ours" else ""
            size = f"{r['archive_bytes'] / MB:.1f}" if "archive_bytes" in r else ""
            rows.append([f"{phase}, {who}", f"{r['seconds']:.1f}", f"{r['cpu']:.1f}", kids])
            other = split["machine"] - r["cpu"] - split["postgres"] - split["sshd"]
            rows[-1] += [f"{split['postgres']:.1f}", f"{split['sshd']:.1f}", f"{other:.1f}", size]
    _table(rows)
    print("pipeline: ours, the server and the programs it ran; the reference, bash and every program in it.")
    print("other: the rest of the machine's busy CPU time meanwhile (this benchmark's polling and sampling,")
    print("the kernel's writeback, anything else running): well above 1 s means the run was disturbed.")


def _reference_detail(ref: dict[str, Any]) -> None:
    steps = ref["backup"]["steps"]
    print(f"\nReference backup: pg_dump {steps[0]:.1f} s, tar -cz | openssl enc {steps[1]:.1f} s, ", end="")
    print(f"sftp put {steps[2]:.1f} s.")
    steps = ref["restore"]["steps"]
    print(
        f"Reference restore: sftp get {steps[0]:.1f} s, openssl enc -d | tar -xz {steps[1]:.1f} s, ", end=""
    )
    print(f"createdb + psql {steps[2]:.1f} s, renames + DROP DATABASE + rm -rf {steps[3]:.1f} s.")
    for phase in TARGETS:
        peaks = sorted(ref[phase]["by_process"].items(), key=lambda kv: -kv[1])
        print(f"Reference {phase}, VmHWM MB: " + ", ".join(f"{c} {mb:.1f}" for c, mb in peaks))


def _ours_detail(phase: str, o: dict[str, Any]) -> None:
    print(
        f"\nOurs, {phase}: {o['task_seconds']:.2f} s by the task's own timestamps. Stages (s after the POST):"
    )
    rows = [["subtask", "stage", "from", "to", "seconds"]]
    rows += [[sub, st, f"{a:.2f}", f"{b:.2f}", f"{b - a:.2f}"] for sub, st, a, b in o["stages"]]
    _table(rows)
    dumps = [c for c in o["children"] if c["comm"] == "pg_dump"]
    for c in o["children"]:
        what = c["comm"]
        if what == "pg_dump" and len(dumps) == 2:
            what += " pass 1 (measuring)" if c is dumps[0] else " pass 2 (into the archive)"
        print(f"  {what}: seen from {c['start']:.1f} s to {c['end']:.1f} s, VmHWM {c['rss_mb']:.1f} MB")
    timeline = o["timeline"]
    if phase == "backup" and len(dumps) == 2:
        files, db = rate(timeline, 0, dumps[1]["start"]), rate(timeline, dumps[1]["start"], dumps[1]["end"])
        print(f"  archive bytes uploaded: {_mbs(files)} before pass 2, {_mbs(db)} during it")
    elif phase.startswith("restore") and timeline:
        print(f"  archive bytes downloaded and extracted: {_mbs(rate(timeline, 0, timeline[-1][0]))}")
    at = "-" if o["rss_peak_at"] is None else f"{o['rss_peak_at']:.1f} s"
    print(f"  server RSS: {o['rss_baseline_mb']:.1f} MB at the start, peak {o['rss_mb']:.1f} MB", end="")
    print(f" (sampled peak at {at}, in {o['rss_peak_stage']})")
    threads = ", ".join(f"{name} {cpu:.1f}" for name, cpu in o["threads"][:6])
    print(f"  server threads' CPU seconds: {threads}")


def _mbs(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} MB/s"


# -- the run ---------------------------------------------------------------------------------------------


def code_version() -> str:
    """The commit measured, and how many files of the work tree differ from it."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    changed = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True, check=False)
    count = len(changed.stdout.splitlines())
    return f"{head.stdout.strip() or 'unknown'}" + (f" with {count} files changed or added" if count else "")


def settle() -> None:
    """Dirty pages of the previous step are written out before the next is timed."""
    os.sync()
    time.sleep(1)


def bench_run(args: argparse.Namespace, bench: Bench) -> dict[str, Any]:
    size = args.size_mib << 20
    load_at_start = os.getloadavg()[0]
    log(f"generating {args.size_mib} MiB: database and files in {bench.root}")
    begun = time.perf_counter()
    inp = generate(bench.root, bench.dsn, size)
    make_sqlite(bench.sqlite)
    inp["generation_seconds"] = time.perf_counter() - begun
    inp["files"], inp["files_bytes"] = tree_bytes(bench)
    inp["sqlite_bytes"] = bench.sqlite.stat().st_size
    known = pin_host_key(bench)
    log(f"starting the server, with the sshd on 127.0.0.1:{bench.sftp.port} as its backup location")
    start_server(bench)
    rounds = []
    for i in range(args.repeat):
        profile = args.py_spy and i == 0
        rounds.append(one_round(args, bench, known, f"round {i + 1}/{args.repeat}: ", profile))
    inp["dump_bytes"] = rounds[0]["reference"]["backup"]["dump_bytes"]
    version = subprocess.run([tool("ssh"), "-V"], capture_output=True, text=True, check=False).stderr
    result: dict[str, Any] = {"size_mib": args.size_mib, "input": inp, "rounds": rounds}
    result |= {"sshd": version.split(",")[0].strip(), "code": code_version()}
    result["load"] = {"start": load_at_start, "end": os.getloadavg()[0]}
    result["summary"] = summary = {
        phase: {
            "reference": statistics.median(r["reference"][phase]["seconds"] for r in rounds),
            "ours": statistics.median(r["ours"][phase]["seconds"] for r in rounds),
            "rss_mb": max(r["ours"][phase]["rss_mb"] + r["ours"][phase]["own_child_rss_mb"] for r in rounds),
        }
        for phase in TARGETS
    }
    result["targets"] = {
        phase: summary[phase]["reference"] / summary[phase]["ours"] >= target
        for phase, target in TARGETS.items()
    }
    result["targets"]["rss"] = all(summary[p]["rss_mb"] < TARGET_RSS_MB for p in TARGETS)
    return result


def one_round(args: argparse.Namespace, bench: Bench, known: Path, say: str, profile: bool) -> dict[str, Any]:
    """Both backups, then both restores (ours first: the reference's restore leaves the appliance as
    the backups found it too). Each restore must bring back the state the round started with."""
    assert bench.api is not None
    before = snapshot(bench)
    ref: dict[str, Any] = {}
    ours: dict[str, Any] = {}
    checks: dict[str, str] = {}
    spy = (lambda name: args.py_spy / f"ours-{name}.txt") if profile else (lambda name: None)
    settle()
    log(say + "backup, reference: pg_dump, tar -cz | openssl enc, sftp put")
    ref["backup"] = reference_backup(bench, known)
    settle()
    log(say + "backup, ours: POST /v1/backups/tasks")
    body: dict[str, Any] = {"elements": ELEMENTS}
    ours["backup"] = ours_phase(bench, "/v1/backups/tasks", body, "/v1/tasks", spy("backup"))
    listed = bench.api.request("GET", "/v1/backups", bench.token).json()["elements"]
    name = str(max(listed, key=lambda b: b["fileName"])["fileName"])  # names end in the time taken
    ours["backup"]["archive_bytes"] = (bench.sftp.directory / name).stat().st_size
    settle()
    log(say + f"restore, ours: POST /v1/restores/tasks with {name}")
    body = {"elements": ELEMENTS, "backupFile": name, "encryption": {"passphrase": PASSPHRASE}}
    ours["restore"] = ours_phase(bench, "/v1/restores/tasks", body, "/v1/restores/tasks", spy("restore"))
    log(say + "checking the restored appliance")
    checks["our restore"] = differences(before, snapshot(bench))
    if args.local_restore:
        copy = Path("/tmp") / f"sddc-bench-{os.getpid()}-{name}"
        try:
            shutil.copyfile(bench.sftp.directory / name, copy)
            settle()
            log(say + f"restore, ours, from a local copy: POST /v1/restores/tasks with {copy}")
            body["backupFile"] = str(copy)
            ours["restore_local"] = ours_phase(bench, "/v1/restores/tasks", body, "/v1/restores/tasks", None)
        finally:
            copy.unlink(missing_ok=True)
        checks["our restore from /tmp"] = differences(before, snapshot(bench))
    settle()
    log(say + "restore, reference: sftp get, openssl enc -d | tar -xz, psql, renames")
    ref["restore"] = reference_restore(bench, known, ref["backup"]["remote"])
    log(say + "checking the restored appliance")
    checks["the reference's restore"] = differences(before, snapshot(bench), whole_seconds=True)
    for phases in (ref, ours):
        for run in phases.values():
            run["cpu_split"] = vars(run["cpu_split"])
    return {"reference": ref, "ours": ours, "checks": checks}


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.backup_restore", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--size-mib", type=int, default=1024, help="appliance size (default 1024)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead")
    parser.add_argument("--tmpdir", type=Path, help="where the appliance and archives go (default $TMPDIR)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of all four runs (default 1)")
    parser.add_argument(
        "--local-restore",
        action="store_true",
        help="also time our restore from a copy of the backup in /tmp (no download; not judged)",
    )
    parser.add_argument("--py-spy", type=Path, help="record our first round with py-spy: DIR/ours-*.txt")
    args = parser.parse_args(argv)
    if args.py_spy is not None:
        if shutil.which("py-spy") is None:
            parser.error(
                "--py-spy needs py-spy on PATH (pip install py-spy, in a virtual environment of its own)"
            )
        args.py_spy = args.py_spy.resolve()
        args.py_spy.mkdir(parents=True, exist_ok=True)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    work = Path(tempfile.mkdtemp(prefix="sddc-bench-br-", dir=args.tmpdir))
    cluster: PostgresCluster | None = None
    account: Account | None = None
    sftp: SshServer | None = None
    bench: Bench | None = None
    try:
        cluster = PostgresCluster()
        cluster.start()
        dsn = cluster.create_database("appliance")
        account = ensure_account(work)
        sftp = SshServer(account, make_host_keys(work), ("ecdsa",), work / "sshd")
        sftp.start()
        bench = Bench(work, cluster, dsn, work / "appliance", sftp)
        result = bench_run(args, bench)
        if args.json:
            print(json.dumps(result, indent=2, default=str))
        else:
            report(result)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        log("cleaning up")
        if bench is not None and bench.app is not None:
            with contextlib.suppress(Exception):
                bench.app.stop()
        if sftp is not None:
            with contextlib.suppress(Exception):
                sftp.stop()
        if account is not None and not retire_account(account):
            log(f"could not remove the login {account.name}: run `userdel -r {account.name}`")
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
