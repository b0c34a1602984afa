"""Benchmark: our SFTP backend against OpenSSH's ``sftp`` client, on a real sshd over loopback.

    .venv/bin/python -m bench.storage [--size-mib 512] [--repeat 3] [--json] [--profile DIR]

Starts an OpenSSH sshd on 127.0.0.1 (ECDSA host key, pinned by our backend) and writes a file of random
data. Then, ``--repeat`` rounds, each timing our ``put`` (``sftp_storage(...).put``: SHA-256, writes,
fsync, stat, atomic rename) and two ``get`` (into a local file; discarded), and in one ``sftp -b``
session OpenSSH's ``put -f`` (fsync), ``put``, ``get`` (into the same local file) and ``get`` to
/dev/null. Prints best and median MB/s, ours over OpenSSH, and the targets (>= 0.8x for put and get)
with PASS/FAIL; always exits 0. Everything it creates goes at the end, also on Ctrl-C or SIGTERM.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.sshd import Account, SshServer, ensure_account, make_host_keys, retire_account, tool  # noqa: E402

from sddc_backup.storage.sftp import CIPHERS, SftpSettings, sftp_storage  # noqa: E402

MB = 1e6
CHUNK = 1 << 20  # what our source yields to put()
# Bytes per write() of our download, as sftp writes it: on the 6.18 VM kernel, 4 MiB writes into the page
# cache took 0.35-1.2 s of system time per 512 MiB against ~0.1 s for 256 KiB ones (see bench/README.md).
WRITE = 256 << 10
TARGET = 0.8  # ours / OpenSSH, for put and for get, judged on the medians
CIPHER = "aes256-gcm@openssh.com"  # the first of our CIPHERS; OpenSSH gets it with -c
ROWS = (  # key, operation, client; an ours_ row is compared with the OpenSSH row after it
    ("ours_put", "put", "ours: ObjectStore.put (SHA-256, fsync, rename)"),
    ("openssh_put", "put", "OpenSSH: sftp put -f (fsync)"),
    ("ours_get", "get", "ours: ObjectStore.get -> local file"),
    ("openssh_get", "get", "OpenSSH: sftp get -> local file"),
    ("ours_get_null", "get, info", "ours: ObjectStore.get, discarded"),
    ("openssh_get_null", "get, info", "OpenSSH: sftp get -> /dev/null"),
    ("openssh_put_nosync", "put, info", "OpenSSH: sftp put (no fsync)"),
)
TARGETS = {"ours_put": "put", "ours_get": "get"}  # judged; the other ratios are information
STAMP = "!date +%s.%N"
Times = dict[str, list[float]]  # seconds of each run, by row key


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_data(paths: tuple[Path, ...], size: int) -> str:
    """``size`` random (incompressible) bytes in each of ``paths``; returns their SHA-256."""
    digest = hashlib.sha256()
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(path.open("wb")) for path in paths]
        for done in range(0, size, CHUNK):
            chunk = os.urandom(min(CHUNK, size - done))
            digest.update(chunk)
            for f in files:
                f.write(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class FileSource:
    """A ``ByteSource`` over a local file, in ``CHUNK`` pieces."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def open(self) -> AsyncIterator[bytes]:
        # Blocking reads, as the file sits in the page cache: a thread per chunk would cost more.
        with self.path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk


@contextlib.contextmanager
def clock(times: list[float], profile: Path | None) -> Iterator[None]:
    """Appends the block's wall seconds to ``times``; under cProfile (written to ``profile``) if given."""
    prof = cProfile.Profile() if profile is not None else None
    begun = time.perf_counter()
    if prof is not None:
        prof.enable()
    try:
        yield
    finally:
        if prof is not None and profile is not None:
            prof.disable()
            prof.dump_stats(profile)
        times.append(time.perf_counter() - begun)


async def ours(
    settings: SftpSettings, data: Path, out: Path, name: str, times: Times, prof: Path | None
) -> str:
    """A put and two gets on a fresh, already connected store; returns the SHA-256 put() reports."""
    store = await sftp_storage(settings)
    try:
        await store.free_space()  # connects (host key probe, login, SFTP session) before the clock starts
        with clock(times["ours_put"], prof and prof / "ours-put.prof"):
            result = await store.put(name, FileSource(data))
        with clock(times["ours_get"], prof and prof / "ours-get.prof"), out.open("wb") as f:
            async for chunk in store.get(name):
                view = memoryview(chunk)
                for at in range(0, len(view), WRITE):
                    f.write(view[at : at + WRITE])
        with clock(times["ours_get_null"], prof and prof / "ours-get-discarded.prof"):
            async for _ in store.get(name):
                pass
        await store.delete(name)
    finally:
        await store.close()
    return result.sha256


def openssh(server: SshServer, data: Path, out: Path, work: Path, times: Times) -> None:
    """One ``sftp -b`` session; each timed command between ``!date`` stamps (connecting is not timed)."""
    a, b = (f'"{server.directory}/openssh-{os.getpid()}-{x}"' for x in "ab")
    timed = {
        "openssh_put": f'put -f "{data}" {a}',
        "openssh_put_nosync": f'put "{data}" {b}',
        "openssh_get": f'get {a} "{out}"',
        "openssh_get_null": f"get {a} /dev/null",
    }
    batch = work / "batch"
    batch.write_text("".join(f"{STAMP}\n{cmd}\n{STAMP}\n" for cmd in timed.values()) + f"rm {a}\nrm {b}\n")
    cmd = [tool("sftp"), "-b", str(batch), "-F", "/dev/null", "-P", str(server.port), "-c", CIPHER]
    cmd += ["-i", str(server.client_key), "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no"]
    cmd += ["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", f"{server.user}@{server.host}"]
    # Its own session: Ctrl-C reaches only us; run() kills sftp (and so its ssh) when interrupted.
    done = subprocess.run(
        cmd, check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True, start_new_session=True
    )
    stamps = [float(s) for s in re.findall(r"^(\d+\.\d+)$", done.stdout, re.MULTILINE)]
    if done.returncode != 0 or len(stamps) != 2 * len(timed):
        raise RuntimeError(
            f"sftp exited with {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    for i, key in enumerate(timed):
        times[key].append(stamps[2 * i + 1] - stamps[2 * i])


def summarize(times: Times, size: int) -> dict[str, Any]:
    runs: dict[str, dict[str, Any]] = {}
    for key, _, _ in ROWS:
        rates = [size / MB / s for s in times[key]]
        runs[key] = {
            "seconds": times[key],
            "mb_s": rates,
            "best": max(rates),
            "median": statistics.median(rates),
        }
    ratios = {}
    for (key, _, _), (theirs, _, _) in itertools.pairwise(ROWS):
        if key.startswith("ours_"):
            ratio = {k: runs[key][k] / runs[theirs][k] for k in ("best", "median")}
            ratios[key] = {**ratio, "pass": ratio["median"] >= TARGET if key in TARGETS else None}
    targets = {op: ratios[key]["pass"] for key, op in TARGETS.items()}
    return {"runs": runs, "ratios": ratios, "targets": targets, "target_ratio": TARGET}


def report(result: dict[str, Any]) -> None:
    runs, ratios = result["runs"], result["ratios"]
    print(f"\n{result['size_mib']} MiB of random data, rounds: {result['repeat']}, CPUs: {os.cpu_count()}.")
    print(f"Server: {result['sshd']} sshd on 127.0.0.1, ECDSA host key (pinned by ours).")
    print(f"Cipher: {CIPHER} for both (ours: first in sftp.CIPHERS; OpenSSH: -c {CIPHER}).")
    print(f"Target: ours >= {TARGET:g}x OpenSSH's MB/s for put and for get, judged on the medians.\n")
    rows = [["operation", "client", "best MB/s", "median MB/s", "ratio best", "ratio median", "target"]]
    for key, op, client in ROWS:
        run, cells = runs[key], ["", "", ""]
        if r := ratios.get(key):
            verdict = "" if r["pass"] is None else "PASS" if r["pass"] else "FAIL"
            cells = [f"{r['best']:.2f}x", f"{r['median']:.2f}x", verdict]
        rows.append([op, client, f"{run['best']:.1f}", f"{run['median']:.1f}", *cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        line = (c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        print("  ".join(line))
    print(f"""
MB/s: 10^6 bytes of the file per second; ratio: ours over the OpenSSH row below it. Rows marked
info are not judged. Connecting is not timed (ours connects before the clock starts; OpenSSH's
commands are timed between `!date` stamps in its batch). Ours logs in with the password, OpenSSH
with the login's Ed25519 key: the auth method does not change the throughput. Timed puts fsync on
the server (ours always does; OpenSSH: `put -f`). Gets into the local file overwrite it, without
fsync (ours in writes of {WRITE >> 10} KiB, as sftp writes); `discarded` and /dev/null leave the
local disk out. Ours is this one Python process; OpenSSH's client is two (sftp and ssh).""")
    checks = ", ".join(f"{k} {'OK' if v else 'MISMATCH'}" for k, v in result["sha256_checks"].items())
    print(f"SHA-256 of what came back (first round): {checks}.")
    if result.get("profile"):
        print(f"cProfile of an extra round of ours (not counted): {result['profile']}/ours-*.prof")


def bench(args: argparse.Namespace, work: Path, server: SshServer) -> None:
    size = args.size_mib << 20
    data, out = work / "data.bin", work / "download.bin"
    log(f"writing {args.size_mib} MiB of random data to {data}")
    digest = make_data((data, out), size)  # each get overwrites out: no get pays for new pages
    pin = server.fingerprints["ecdsa"]
    settings = SftpSettings(
        server.host, server.port, server.user, str(server.directory), server.password, fingerprint=pin
    )
    times: Times = {key: [] for key, _, _ in ROWS}
    checks: dict[str, bool] = {}
    for i in range(args.repeat):
        log(f"round {i + 1}/{args.repeat}: ours put, get, get discarded")
        sent = asyncio.run(ours(settings, data, out, f"bench-{i}.bin", times, None))
        if i == 0:
            checks["ours put"], checks["ours get"] = sent == digest, sha256_of(out) == digest
        log(f"round {i + 1}/{args.repeat}: OpenSSH sftp put -f, put, get, get to /dev/null")
        openssh(server, data, out, work, times)
        if i == 0:
            checks["OpenSSH put+get"] = sha256_of(out) == digest
    if args.profile is not None:
        log(f"ours once more under cProfile, into {args.profile}")
        asyncio.run(ours(settings, data, out, "bench-profile.bin", {k: [] for k in times}, args.profile))
    version = subprocess.run([tool("ssh"), "-V"], capture_output=True, text=True, check=False).stderr.strip()
    result = {"size_mib": args.size_mib, "repeat": args.repeat, "cipher": CIPHER, "ours_ciphers": CIPHERS}
    result["cpus"] = os.cpu_count()
    result |= {
        "sshd": version.split(",")[0],
        "sha256_checks": checks,
        "profile": args.profile and str(args.profile),
    }
    result |= summarize(times, size)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)


def retire(account: Account) -> None:
    if not retire_account(account):
        log(f"could not remove the login {account.name}: run `userdel -r {account.name}`")


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM does what Ctrl-C does: asyncio.run's handler while it runs (it cancels the main task)."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):  # not while cleaning up, when SIGINT is ignored
        handler(signal.SIGINT, frame)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storage", description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=512, help="size of the file (default 512)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each measurement (default 3)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead")
    parser.add_argument("--profile", type=Path, help="profile an extra round of ours into DIR/ours-*.prof")
    parser.add_argument("--tmpdir", type=Path, help="where the data and downloads go (default $TMPDIR)")
    args = parser.parse_args(argv)
    if args.profile is not None:
        args.profile = args.profile.resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
    signal.signal(signal.SIGTERM, _terminate)
    work = Path(tempfile.mkdtemp(prefix="sddc-bench-storage-", dir=args.tmpdir))
    account = server = None
    try:
        account = ensure_account(work)  # a throwaway login of its own, removed at the end
        server = SshServer(account, make_host_keys(work), ("ecdsa",), work / "sshd")
        log(f"starting sshd on 127.0.0.1:{server.port} (ECDSA host key), user {account.name}")
        server.start()
        bench(args, work, server)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        log("cleaning up")
        if server is not None:
            with contextlib.suppress(Exception):
                server.stop()
        if account is not None:
            retire(account)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
