"""Benchmark: task polling under load while a backup runs, against a trivial endpoint of the same server.

    .venv/bin/python -m bench.api_load [--duration 30] [--clients 32] [--size-mib 1024] [--interval 0]
        [--py-spy DIR] [--json] [--tmpdir DIR]

Generates files (``--size-mib``, as bench/archive.py does), starts an OpenSSH sshd on 127.0.0.1 with a
throwaway login, and the real server (``sddc-backup serve``) protecting those files and configured to back
up to the sshd. Then, in one run, on the same data:

1. backup A, without load (only one poll every 0.1 s to see it end);
2. the ceiling: ``--clients`` connections send ``GET /v1/vcf-services`` for ``--duration`` s, no backup;
3. backups under load: the same clients poll ``GET /v1/tasks/{id}`` of a running backup; backups are
   started back to back until ``--duration`` s are covered, and the load lasts until the last one ends;
4. backup C, without load.

Prints requests per second, p50/p99 latency and errors of both loads, the backups' wall times with and
without the polling, where the CPU went, and the targets with PASS/MISS (always exits 0 when it could
measure). Everything it creates goes at the end, also on Ctrl-C or SIGTERM (exit status 130).
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import resource
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, astuple, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.procs import descendants, stat_fields  # noqa: E402
from tests.support.server import ADMIN, ADMIN_PASSWORD, ServerProcess  # noqa: E402
from tests.support.sshd import Account, SshServer, ensure_account, make_host_keys, retire_account, tool  # noqa: E402

MB = 1e6
PASSPHRASE = "VMw@re1!VMw@re1!"
BACKUP = {"elements": [{"resourceType": "SDDC_MANAGER"}]}
TREES = ("etc", "var", "opt")  # what bench._appliance writes under its root
CEILING = "/v1/vcf-services"
TERMINAL = ("SUCCESSFUL", "FAILED", "CANCELLED")
UPLOAD_STAGE = "Upload the archive"
TARGET_RATIO = 0.5  # task polling req/s over the ceiling's
TARGET_P99_MS = 50.0  # task polling p99
TARGET_SLOWDOWN = 0.20  # backup wall time under polling over without, minus 1
POLL = 0.1  # seconds between the polls that watch a backup without load
WARM_UP = 2.0  # seconds of untimed requests on each endpoint before the ceiling
TICK = os.sysconf("SC_CLK_TCK")
NET_ERRORS = (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the load generator -----------------------------------------------------------------------------------


class ProtocolError(Exception):
    """An answer this client cannot read (the server always sends Content-Length)."""


class Connection:
    """One HTTP/1.1 keep-alive connection over TLS, the server's certificate pinned.

    Written by hand on asyncio streams, so that the load generator's own CPU stays small (this machine's
    two cores are shared with the server and sshd; the report shows what it used). A connection that
    fails is closed, and opened again by the next request."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext) -> None:
        self.host, self.port, self.context = host, port, context
        self.authority = f"{host}:{port}"
        self.opened = 0
        self.resent = 0  # requests sent again on a new connection after the server closed an idle one
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def raw(self, method: str, path: str, token: str | None = None, body: bytes | None = None) -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.authority}\r\n"
        if token is not None:
            head += f"Authorization: Bearer {token}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return (head + "\r\n").encode() + (body or b"")

    async def exchange(self, raw: bytes) -> tuple[int, bytes]:
        """Sends one request (from ``raw()``) and reads its answer: (status, body)."""
        reused = self._writer is not None
        try:
            return await self._exchange(raw)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
            # The server closes a keep-alive connection that was idle for 5 s (uvicorn's default): a
            # request sent on it gets no answer at all, and is sent once more on a new connection.
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
            self.resent += 1
            return await self._exchange(raw)

    async def _exchange(self, raw: bytes) -> tuple[int, bytes]:
        try:
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self.context
                )
                self.opened += 1
            assert self._reader is not None
            self._writer.write(raw)
            head = await self._reader.readuntil(b"\r\n\r\n")
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            if not head.startswith(b"HTTP/1.1 ") or at < 0:
                raise ProtocolError(head[:200].decode(errors="replace"))
            length = int(lower[at + 17 : lower.index(b"\r\n", at + 2)])
            body = await self._reader.readexactly(length) if length else b""
            if b"\r\nconnection: close" in lower:
                self.close()
            return int(head[9:12]), body
        except BaseException:
            self.close()
            raise

    async def request(
        self, method: str, path: str, token: str | None = None, payload: Any = None
    ) -> tuple[int, Any]:
        """One request outside the timed loops; the body decoded from JSON (``None`` when empty)."""
        body = None if payload is None else json.dumps(payload).encode()
        status, answer = await self.exchange(self.raw(method, path, token, body))
        return status, json.loads(answer) if answer else None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


@dataclass
class Load:
    """One timed load: what its clients asked, and what they saw."""

    path: str  # the clients' current path; changed by the driver when a new backup starts
    interval: float
    task_id: str | None = None  # polling: the task whose end sets ``ended``
    stop: bool = False
    begun: float = 0.0
    stopped: float = 0.0
    done: list[tuple[float, float]] = field(default_factory=list)  # (completed at, seconds) of each 200
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def check(self, body: bytes) -> None:
        """Every 200 answer is decoded (as a client would); a poll of the current task that sees it
        end tells the driver."""
        data = json.loads(body)
        if self.task_id is None:
            if not isinstance(data, dict) or "elements" not in data:
                raise ProtocolError("not a page of elements")
        elif data["id"] == self.task_id and data["status"] in TERMINAL:
            self.ended.set()


async def client(conn: Connection, token: str, load: Load) -> None:
    """Requests ``load.path`` back to back (after ``load.interval`` s, if set) until told to stop."""
    path, raw = "", b""
    if load.interval:  # paced clients start spread over one interval, not all in the same instant
        await asyncio.sleep(random.uniform(0, load.interval))  # noqa: S311 - timing, not secrets
    while not load.stop:
        if load.path != path:
            path, raw = load.path, conn.raw("GET", load.path, token)
        sent = time.perf_counter()
        try:
            status, body = await conn.exchange(raw)
            if status == 200:
                load.check(body)
        except (*NET_ERRORS, ProtocolError, KeyError) as exc:
            load.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.01)  # a refused connection must not spin
            continue
        now = time.perf_counter()
        if status != 200:
            load.errors[f"HTTP {status}"] += 1
        else:
            load.done.append((now, now - sent))
        if load.interval:
            await asyncio.sleep(load.interval)


def load_summary(load: Load) -> dict[str, Any]:
    window = load.stopped - load.begun
    latencies = sorted(s for at, s in load.done if at <= load.stopped)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else [0.0] * 99
    return {
        "path": load.path,
        "window_seconds": window,
        "requests": len(latencies),
        "rps": len(latencies) / window if window > 0 else 0.0,
        "p50_ms": cuts[49] * 1000,
        "p90_ms": cuts[89] * 1000,
        "p99_ms": cuts[98] * 1000,
        "max_ms": (latencies[-1] if latencies else 0.0) * 1000,
        "errors": sum(load.errors.values()),
        "error_kinds": dict(load.errors),
    }


# -- CPU ----------------------------------------------------------------------------------------------------


def _ticks(fields: list[str] | None, children: bool = False) -> int:
    if fields is None:
        return 0
    return sum(int(f) for f in fields[11 : 15 if children else 13])


def _tree(root: int) -> list[int]:
    """``root`` and its live descendants."""
    return [root, *descendants(root)]


@dataclass
class Cpu:
    """CPU seconds so far of the processes that share the machine's cores."""

    client: float  # this process: the load generator (and the driver of the backups)
    server: float  # the server process, all its threads, and any program it ran
    server_loop: float  # of which the main thread: the event loop that answers every request
    sshd: float  # the sshd and its session processes
    machine: float  # every CPU of the machine, busy (not idle or waiting for I/O)

    @classmethod
    def now(cls, server: int, sshd: int) -> Cpu:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        head = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
        busy = sum(int(f) for f in head) - int(head[3]) - int(head[4])
        return cls(
            client=usage.ru_utime + usage.ru_stime,
            server=_ticks(stat_fields(f"/proc/{server}/stat"), children=True) / TICK,
            server_loop=_ticks(stat_fields(f"/proc/{server}/task/{server}/stat")) / TICK,
            sshd=sum(_ticks(stat_fields(f"/proc/{p}/stat"), children=True) for p in _tree(sshd)) / TICK,
            machine=busy / TICK,
        )

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(*(a - b for a, b in zip(astuple(self), astuple(other), strict=True)))


# -- the run --------------------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    work: Path
    app: ServerProcess
    sftp: SshServer
    conns: list[Connection] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    driver: Connection | None = None  # starts and watches the backups
    token: str = ""
    first_task: str = ""  # backup A's id: the warm-up polls it

    @property
    def server_pid(self) -> int:
        assert self.app.proc is not None
        return self.app.proc.pid

    def cpu(self) -> Cpu:
        assert self.app.proc is not None and self.sftp._process is not None
        return Cpu.now(self.app.proc.pid, self.sftp._process.pid)

    async def call(self, method: str, path: str, payload: Any = None, expect: int = 200) -> Any:
        assert self.driver is not None
        status, data = await self.driver.request(method, path, self.token, payload)
        if status != expect:
            raise RuntimeError(f"{method} {path}: {status} {data}")
        return data


def _when(stamp: str | None) -> float:
    return 0.0 if stamp is None else datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


async def finished_backup(bench: Bench, task_id: str, posted: float, load: str) -> dict[str, Any]:
    """The ended backup task, as a result: its wall time by its own timestamps, and its upload stage's."""
    task = await bench.call("GET", f"/v1/tasks/{task_id}")
    if task["status"] != "SUCCESSFUL":
        raise RuntimeError(f"backup {task_id} ended {task['status']}: {json.dumps(task.get('errors'))}")
    upload = next(st for sub in task["subTasks"] for st in sub["stages"] if st["name"] == UPLOAD_STAGE)
    return {
        "id": task_id,
        "load": load,
        "seconds": _when(task["completionTimestamp"]) - _when(task["creationTimestamp"]),
        "upload_seconds": _when(upload.get("completionTimestamp")) - _when(upload["creationTimestamp"]),
        "uploaded_bytes": upload.get("progress", {}).get("completed", 0),
        "stages": stage_seconds(task),
        "seen_seconds": time.perf_counter() - posted,  # from the POST until a poll saw it end
    }


def stage_seconds(task: dict[str, Any]) -> dict[str, float]:
    """Seconds in each stage of ``task``, by its own timestamps, and "(before the first stage)". The last
    stage ends when the task does: nothing runs after it."""
    stages = [st for sub in task["subTasks"] for st in sub["stages"]]
    found = {
        st["name"]: _when(st.get("completionTimestamp")) - _when(st["creationTimestamp"]) for st in stages
    }
    if stages:
        found["(before the first stage)"] = _when(stages[0]["creationTimestamp"]) - _when(
            task["creationTimestamp"]
        )
    return found


async def start_backup(bench: Bench) -> tuple[str, float]:
    posted = time.perf_counter()
    task = await bench.call("POST", "/v1/backups/tasks", BACKUP, 202)
    return str(task["id"]), posted


async def settle() -> None:
    """Dirty pages of the previous step are written out before the next is timed."""
    await asyncio.to_thread(os.sync)
    await asyncio.sleep(1)


async def backup_alone(bench: Bench, name: str) -> dict[str, Any]:
    await settle()
    log(f"backup {name}, without load")
    before, begun = bench.cpu(), time.perf_counter()
    task_id, posted = await start_backup(bench)
    while True:
        task = await bench.call("GET", f"/v1/tasks/{task_id}")
        if task["status"] in TERMINAL:
            break
        await asyncio.sleep(POLL)
    run = await finished_backup(bench, task_id, posted, "none")
    run |= {"name": name, "cpu": asdict(bench.cpu() - before), "cpu_wall": time.perf_counter() - begun}
    return run


@contextlib.asynccontextmanager
async def clients_on(bench: Bench, load: Load) -> AsyncIterator[None]:
    """Every client on ``load`` while the block runs; the window ends when the block does."""
    tasks = [asyncio.create_task(client(c, t, load)) for c, t in zip(bench.conns, bench.tokens, strict=True)]
    load.begun = time.perf_counter()
    try:
        yield
    finally:
        load.stopped = load.stopped or time.perf_counter()
        load.stop = True
        await asyncio.gather(*tasks, return_exceptions=True)


async def ceiling(bench: Bench) -> dict[str, Any]:
    args = bench.args
    await settle()
    log(f"warming up: {WARM_UP:g} s of each endpoint, not counted")
    async with clients_on(bench, Load(CEILING, args.interval)):
        await asyncio.sleep(WARM_UP)
    async with clients_on(bench, Load(f"/v1/tasks/{bench.first_task}", args.interval, task_id="-")):
        await asyncio.sleep(WARM_UP)
    await settle()
    log(f"ceiling: {args.clients} clients on GET {CEILING} for {args.duration:g} s, no backup")
    load = Load(CEILING, args.interval)
    with py_spy(bench.server_pid, args.py_spy and args.py_spy / "ceiling.txt"):
        before, begun = bench.cpu(), time.perf_counter()
        async with clients_on(bench, load):
            await asyncio.sleep(args.duration)
        spent = {"cpu": asdict(bench.cpu() - before), "cpu_wall": time.perf_counter() - begun}
    return {**load_summary(load), **spent}


async def backup_ended(bench: Bench, load: Load, task_id: str) -> None:
    """Returns when the pollers have seen the backup end; the driver looks too, once a second, in case
    none of them gets through."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(load.ended.wait(), 1.0)
        if load.ended.is_set() or (await bench.call("GET", f"/v1/tasks/{task_id}"))["status"] in TERMINAL:
            return


async def polling(bench: Bench) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Backups back to back while the clients poll the running one, until ``--duration`` s are covered;
    the load lasts until the last backup ends, so that every one of them ran under it."""
    args = bench.args
    await settle()
    log(f"backups under load: {args.clients} clients on GET /v1/tasks/{{id}}, at least {args.duration:g} s")
    runs: list[dict[str, Any]] = []
    with py_spy(bench.server_pid, args.py_spy and args.py_spy / "polling.txt"):
        before, begun = bench.cpu(), time.perf_counter()
        task_id, posted = await start_backup(bench)
        load = Load(f"/v1/tasks/{task_id}", args.interval, task_id=task_id)
        async with clients_on(bench, load):
            while True:
                await backup_ended(bench, load, task_id)
                load.stopped = time.perf_counter()
                run = await finished_backup(bench, task_id, posted, "polling")
                runs.append(run | {"name": f"B{len(runs) + 1}"})
                if load.stopped - load.begun >= args.duration:
                    break
                log(f"backup B{len(runs)} ended after {run['seconds']:.1f} s: another, to cover the duration")
                load.task_id = ""  # polls of the ended backup, still in flight, must not set ``ended``
                load.ended.clear()
                task_id, posted = await start_backup(bench)
                load.task_id, load.path = task_id, f"/v1/tasks/{task_id}"
        spent = {"cpu": asdict(bench.cpu() - before), "cpu_wall": time.perf_counter() - begun}
    return {**load_summary(load), "path": "/v1/tasks/{id}", **spent}, runs


async def connect(bench: Bench) -> None:
    """The driver's connection and one per client, each client with a bearer token of its own."""
    context = ssl.create_default_context(cafile=str(bench.app.cert))
    host, port = "127.0.0.1", bench.app.port
    bench.driver = Connection(host, port, context)
    bench.conns = [Connection(host, port, context) for _ in range(bench.args.clients)]
    credentials = {"username": ADMIN, "password": ADMIN_PASSWORD}

    async def login(conn: Connection) -> str:
        status, data = await conn.request("POST", "/v1/tokens", payload=credentials)
        if status != 201:
            raise RuntimeError(f"POST /v1/tokens: {status} {data}")
        return str(data["accessToken"])

    log(f"logging in {bench.args.clients + 1} times (one token per connection)")
    bench.token = await login(bench.driver)
    bench.tokens = list(await asyncio.gather(*(login(c) for c in bench.conns)))


async def measure(bench: Bench) -> dict[str, Any]:
    await connect(bench)
    try:
        await configure(bench)
        runs = [await backup_alone(bench, "A")]
        bench.first_task = runs[0]["id"]
        ceiling_result = await ceiling(bench)
        polling_result, loaded = await polling(bench)
        runs += loaded
        runs.append(await backup_alone(bench, "C"))
    finally:
        assert bench.driver is not None
        for conn in [bench.driver, *bench.conns]:
            conn.close()
    reconnects = sum(c.opened for c in bench.conns) - len(bench.conns)
    resent = sum(c.resent for c in bench.conns)
    result = {"ceiling": ceiling_result, "polling": polling_result, "backups": runs}
    return result | {"reconnects": reconnects, "resent": resent}


# -- setup ----------------------------------------------------------------------------------------------


def generate_files(root: Path, size: int) -> dict[str, Any]:
    """bench/_appliance.py's files tree, in a child process (as bench/archive.py runs it)."""
    with tempfile.TemporaryFile() as out:
        cmd = [sys.executable, "-m", "bench._appliance", "files", str(root), str(size)]
        proc = subprocess.Popen(cmd, stdout=out, cwd=REPO, start_new_session=True)
        try:
            if proc.wait() != 0:
                raise RuntimeError("generating the files failed")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.seek(0)
        result: dict[str, Any] = json.loads(out.read())
        return result


async def configure(bench: Bench) -> None:
    spec = {"backupLocations": [bench.sftp.location_spec()], "encryption": {"passphrase": PASSPHRASE}}
    task = await bench.call("PUT", "/v1/system/backup-configuration", spec)
    while task["status"] not in TERMINAL:
        await asyncio.sleep(POLL)
        task = await bench.call("GET", f"/v1/tasks/{task['id']}")
    if task["status"] != "SUCCESSFUL":
        raise RuntimeError(f"configuring the SFTP location failed: {json.dumps(task.get('errors'))}")


@contextlib.contextmanager
def py_spy(pid: int, out: Path | None) -> Iterator[None]:
    """``py-spy record`` of the server and its children while the block runs: on-CPU samples per thread,
    at 100 Hz."""
    if out is None:
        yield
        return
    cmd = [shutil.which("py-spy") or "py-spy", "record", "--pid", str(pid), "--rate", "100", "--threads"]
    cmd += ["--subprocesses", "--nonblocking", "--format", "raw", "--output", str(out)]
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


# -- the report -----------------------------------------------------------------------------------------


def summarize(result: dict[str, Any]) -> None:
    ceiling, polled, runs = result["ceiling"], result["polling"], result["backups"]
    alone = [r["seconds"] for r in runs if r["load"] == "none"]
    loaded = [r["seconds"] for r in runs if r["load"] == "polling"]
    without, under = statistics.mean(alone), statistics.mean(loaded)
    ratio = polled["rps"] / ceiling["rps"] if ceiling["rps"] else 0.0
    errors = ceiling["errors"] + polled["errors"]
    result["summary"] = {
        "ratio": ratio,
        "backup_seconds_without_load": without,
        "backup_seconds_under_polling": under,
        "slowdown": under / without - 1,
    }
    result["targets"] = {
        f"task polling req/s >= {TARGET_RATIO:g}x the ceiling's": (f"{ratio:.2f}x", ratio >= TARGET_RATIO),
        f"task polling p99 < {TARGET_P99_MS:g} ms": (
            f"{polled['p99_ms']:.1f} ms",
            polled["p99_ms"] < TARGET_P99_MS,
        ),
        "no errors (both loads)": (str(errors), errors == 0),
        f"backup slowed by <= {TARGET_SLOWDOWN:.0%} under polling": (
            f"{under / without - 1:+.1%}",
            under / without - 1 <= TARGET_SLOWDOWN,
        ),
    }


def _table(rows: list[list[str]], left: int = 2) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = zip(row, widths, strict=True)
        print("  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(cells)).rstrip())


def report(result: dict[str, Any]) -> None:
    inp, args = result["input"], result["args"]
    print(f"\nAppliance: {inp['files_bytes'] / MB:.1f} MB in {inp['files']} generated files", end="")
    print(f" ({', '.join(TREES)}; 70 % text, 30 % random), no database; generated in", end="")
    print(f" {inp['generation_seconds']:.0f} s.")
    print(f"SFTP: {result['sshd']} sshd on 127.0.0.1. {os.cpu_count()} CPUs, load average", end="")
    print(f" {result['load']['start']:.2f} at the start, {result['load']['end']:.2f} at the end.")
    print(f"Code: {result['code']}.")
    pace = "as soon as the answer to the last is in (a closed loop)"
    if args["interval"]:
        pace = f"{args['interval']:g} s after the last answer (the first at a random moment in that time)"
    print(f"Clients: {args['clients']} HTTP/1.1 keep-alive connections over TLS (certificate pinned), a")
    print(f"bearer token each; each sends its next request {pace}.\n")
    _loads(result)
    print()
    rows = [["target", "measured", ""]]
    rows += [[name, value, "PASS" if ok else "MISS"] for name, (value, ok) in result["targets"].items()]
    _table(rows, left=1)
    print()
    _backups(result)
    print()
    _cpu(result)
    _notes(result)


def _loads(result: dict[str, Any]) -> None:
    loaded = ", ".join(r["name"] for r in result["backups"] if r["load"] == "polling")
    rows = [["endpoint", "while", "window s", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms"]]
    rows[0] += ["max ms", "errors"]
    for what, r in (("idle: the ceiling", result["ceiling"]), (f"backup {loaded} runs", result["polling"])):
        rows.append([f"GET {r['path']}", what, f"{r['window_seconds']:.1f}", str(r["requests"])])
        rows[-1] += [f"{r['rps']:.1f}"] + [f"{r[k]:.1f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")]
        rows[-1].append(str(r["errors"]))
    _table(rows)
    for what in ("ceiling", "polling"):
        if kinds := result[what]["error_kinds"]:
            print(f"  errors, {what}: " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
    if result["reconnects"]:
        print(
            f"  connections opened again: {result['reconnects']}, of which {result['resent']} because", end=""
        )
        print(" the server had closed them after 5 s idle (between loads), the request sent again")


def _backups(result: dict[str, Any]) -> None:
    rows = [["backup", "load", "seconds", "input MB/s", "upload stage s", "seen by the driver s"]]
    for r in result["backups"]:
        rate = result["input"]["files_bytes"] / MB / r["seconds"]
        rows.append(
            [r["name"], r["load"], f"{r['seconds']:.2f}", f"{rate:.1f}", f"{r['upload_seconds']:.2f}"]
        )
        rows[-1].append(f"{r['seen_seconds']:.2f}")
    _table(rows)
    _stages(result["backups"])
    s = result["summary"]
    print(f"Without load {s['backup_seconds_without_load']:.2f} s (mean of A and C), under polling", end="")
    print(f" {s['backup_seconds_under_polling']:.2f} s: {s['slowdown']:+.1%}.")
    print("seconds: the task's own creation to completion timestamps. The upload stage streams the archive")
    print("(read, compress, encrypt, SFTP: in the server's child process) to the sshd, and is most of it.")


def _stages(backups: list[dict[str, Any]]) -> None:
    """Where a backup's time went, stage by stage: the mean without load and under polling."""
    means = {}
    for load in ("none", "polling"):
        runs = [r["stages"] for r in backups if r["load"] == load]
        names = list(dict.fromkeys(name for run in runs for name in run))
        means[load] = {n: statistics.mean(run.get(n, 0.0) for run in runs) for n in names} if runs else {}
    rows = [["stage (mean seconds)", "no load", "polling", "difference"]]
    for name in dict.fromkeys([*means["none"], *means["polling"]]):
        alone, loaded = means["none"].get(name, 0.0), means["polling"].get(name, 0.0)
        rows.append([name, f"{alone:.3f}", f"{loaded:.3f}", f"{loaded - alone:+.3f}"])
    print()
    _table(rows)


def _cpu(result: dict[str, Any]) -> None:
    rows = [["CPU, in cores (CPU s / wall s)", "wall s", "load gen.", "server", "event loop", "sshd"]]
    rows[0] += ["other", "machine"]
    loaded = ", ".join(r["name"] for r in result["backups"] if r["load"] == "polling")
    phases = [(f"backup {r['name']}, no load", r) for r in result["backups"] if r["load"] == "none"]
    phases.insert(1, ("ceiling, no backup", result["ceiling"]))
    phases.insert(2, (f"polling + backup {loaded}", result["polling"]))
    for name, phase in phases:
        cpu, wall = phase["cpu"], phase["cpu_wall"]
        other = cpu["machine"] - cpu["client"] - cpu["server"] - cpu["sshd"]
        cells = [cpu["client"], cpu["server"], cpu["server_loop"], cpu["sshd"], other, cpu["machine"]]
        rows.append([name, f"{wall:.1f}", *(f"{c / wall:.2f}" for c in cells)])
    _table(rows, left=1)


def _notes(result: dict[str, Any]) -> None:
    clients, rps = result["args"]["clients"], result["polling"]["rps"]
    print(
        f"""
load gen.: this process (the clients, and the driver that starts and watches the backups); server: the
server process, all threads, and its children once they end (a backup's upload process); event
loop: its main thread, which parses, authenticates and answers every request; other: the rest of
the machine's busy time (kernel writeback, anything else running: well above 0.1 means the run was
disturbed).
The ceiling is GET {CEILING}: the cheapest authenticated GET that answers 200. It pays what every
route pays (TLS, HTTP parsing, the bearer token's JWT check and the user, read from the state store
at most every 2 s), then only a `SELECT 1` on the state store and a body of three short elements.
In a closed loop, latency is about clients / throughput (Little's law): {clients} clients at""",
        end="",
    )
    print(f" {rps:.0f} req/s wait about {clients / rps * 1000 if rps else 0:.0f} ms each.")
    if result.get("py_spy"):
        print(f"py-spy: the server during the ceiling and the polling, in {result['py_spy']}/*.txt")


# -- main -----------------------------------------------------------------------------------------------


def code_version() -> str:
    """The commit measured, how many files of the work tree differ from it, and where the server's
    ``sddc_backup`` comes from (``PYTHONPATH`` may point at another tree: the server inherits it)."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    changed = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True, check=False)
    count = len(changed.stdout.splitlines())
    found = subprocess.run(
        [sys.executable, "-c", "import sddc_backup; print(sddc_backup.__file__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    package = Path(found.stdout.strip()).parent.parent
    version = f"{head.stdout.strip() or 'unknown'}" + (
        f" with {count} files changed or added" if count else ""
    )
    return f"{version}; the server's sddc_backup from {package}"


@dataclass
class Held:
    """What the run creates outside its temporary directory, to be removed at the end."""

    account: Account | None = None
    sftp: SshServer | None = None
    app: ServerProcess | None = None

    def release(self) -> None:
        if self.app is not None:
            with contextlib.suppress(Exception):
                self.app.stop()
        if self.sftp is not None:
            with contextlib.suppress(Exception):
                self.sftp.stop()
        if self.account is not None and not retire_account(self.account):
            log(f"could not remove the login {self.account.name}: run `userdel -r {self.account.name}`")


def run(args: argparse.Namespace, work: Path, held: Held) -> dict[str, Any]:
    load_at_start = os.getloadavg()[0]
    held.account = account = ensure_account(work)  # a throwaway login of its own
    held.sftp = sftp = SshServer(account, make_host_keys(work), ("ecdsa",), work / "sshd")
    log(f"starting sshd on 127.0.0.1:{sftp.port} (ECDSA host key), user {account.name}")
    sftp.start()
    root = work / "appliance"
    log(f"generating {args.size_mib} MiB of files in {root}")
    begun = time.perf_counter()
    inp = generate_files(root, args.size_mib << 20)
    inp["generation_seconds"] = time.perf_counter() - begun
    log("starting the server, protecting those files")
    held.app = app = ServerProcess(work / "data")
    app.base_env = {"SDDC_BACKUP_PATHS": json.dumps([str(root / t) for t in TREES])}
    app.start()
    result = asyncio.run(measure(Bench(args, work, app, sftp)))
    version = subprocess.run([tool("ssh"), "-V"], capture_output=True, text=True, check=False).stderr
    result |= {"input": inp, "sshd": version.split(",")[0].strip(), "code": code_version()}
    result["load"] = {"start": load_at_start, "end": os.getloadavg()[0]}
    result["args"] = {
        k: v for k, v in vars(args).items() if k in ("duration", "clients", "size_mib", "interval")
    }
    result["py_spy"] = args.py_spy and str(args.py_spy)
    summarize(result)
    return result


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM does what Ctrl-C does: asyncio.run's handler while it runs (it cancels the main task)."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):  # not while cleaning up, when SIGINT is ignored
        handler(signal.SIGINT, frame)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.api_load", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of each load (default 30)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument("--size-mib", type=int, default=1024, help="files to back up, MiB (default 1024)")
    parser.add_argument(
        "--interval",
        type=float,
        default=0.0,
        help="seconds each client waits after an answer (default 0: the next request at once)",
    )
    parser.add_argument("--py-spy", type=Path, help="record the server with py-spy under load: DIR/*.txt")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead")
    parser.add_argument(
        "--tmpdir", type=Path, help="where the files and the server's data go (default $TMPDIR)"
    )
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
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
    signal.signal(signal.SIGTERM, _terminate)
    work = Path(tempfile.mkdtemp(prefix="sddc-bench-api-", dir=args.tmpdir))
    held = Held()
    try:
        result = run(args, work, held)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            report(result)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Exception:
        if held.app is not None:
            log("the server's log ends with:\n" + "\n".join(held.app.output().splitlines()[-30:]))
        raise
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        log("cleaning up")
        held.release()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
