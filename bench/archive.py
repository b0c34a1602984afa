"""Benchmark: our archive pipeline against the documented reference, on a generated appliance.

    .venv/bin/python -m bench.archive [--size-mib 1024] [--levels 0,1,2,3] [--json] [--profile DIR]

Generates a database and a files tree (half of ``--size-mib`` each), then times in one run, each in a
child process of its own: ``services.archives.create`` at each ISA-L level, and the reference
``pg_dump && tar -cz | openssl enc -aes-256-cbc -md sha256``. It verifies our archive once
(``services.archives.verify``, timed) and checks that the reference archive decrypts and lists. It
prints a table and the targets with PASS/FAIL, and always exits 0. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.postgres import PostgresCluster  # noqa: E402

from bench._child import PASSPHRASE  # noqa: E402 - stdlib only: this process must stay small
from bench._report import MB, TARGET_RSS_MB, TARGET_SPEEDUP, Run, report  # noqa: E402

SIZE_TOLERANCE = 0.10
REFERENCE = r"""set -o pipefail
t0=$EPOCHREALTIME
"$1" --format=plain --no-password --dbname="$2" --file="$3/$4/sddc-postgres.bkp"
t1=$EPOCHREALTIME
tar -cz -C "$3" "$4" -C "$5" "$6" | openssl enc -aes-256-cbc -md sha256 -pass pass:"$7" -out "$8"
echo "$t0 $t1 $EPOCHREALTIME"
"""
REFERENCE_CHECK = r"""set -o pipefail
openssl enc -d -aes-256-cbc -md sha256 -pass pass:"$1" -in "$2" | tar -tz | wc -l
"""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Ends a child we started and everything in its session (started with start_new_session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        proc.wait()


def run(cmd: list[str], out: IO[bytes], err: IO[bytes] | None = None) -> tuple[float, float]:
    """Runs ``cmd`` to completion; returns (wall seconds, ru_maxrss in MB) from ``os.wait4``."""
    begun = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=REPO, start_new_session=True)
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        _kill(proc)
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = ""
        if err is not None:
            err.seek(0)
            tail = err.read()[-2000:].decode(errors="replace")
        raise RuntimeError(f"{cmd[:4]} exited with {proc.returncode}: {tail}")
    return time.perf_counter() - begun, usage.ru_maxrss * 1024 / MB


def run_json(cmd: list[str]) -> tuple[dict[str, Any], float, float]:
    with tempfile.TemporaryFile() as out:
        seconds, rss = run(cmd, out)
        out.seek(0)
        return json.loads(out.read()), seconds, rss


def generate(tree: Path, dsn: str, size: int) -> dict[str, Any]:
    """Database and files at once (two children, two cores)."""
    py = [sys.executable, "-m", "bench._appliance"]
    cmds = [[*py, "db", dsn, str(size // 2)], [*py, "files", str(tree), str(size - size // 2)]]
    outs = [tempfile.TemporaryFile() for _ in cmds]  # noqa: SIM115 - closed below
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for cmd, out in zip(cmds, outs, strict=True):
            procs.append(subprocess.Popen(cmd, stdout=out, cwd=REPO, start_new_session=True))
        for proc in procs:
            if proc.wait() != 0:
                raise RuntimeError(f"generating the appliance failed: {proc.args!r}")
        result: dict[str, Any] = {}
        for out in outs:
            out.seek(0)
            result.update(json.loads(out.read()))
        return result
    finally:
        for proc in procs:
            _kill(proc)
        for out in outs:
            out.close()


def ours(level: int, dsn: str, tree: Path, work: Path, profile: Path | None) -> Run:
    cmd = [
        sys.executable,
        "-m",
        "bench._child",
        "create",
        str(level),
        dsn,
        str(tree),
        str(work / f"ours-{level}"),
    ]
    if profile is not None:
        cmd.append(str(profile / f"ours-level-{level}.prof"))
    res, _, rss = run_json(cmd)
    return Run("ours", str(level), res["seconds"], res["input_bytes"], res["output_bytes"], rss, res)


def reference(pg_dump: Path, dsn: str, tree: Path, files_bytes: int, work: Path) -> Run:
    stage, base, out = work / "reference", "vcf-backup-reference", work / "reference.tar.gz"
    (stage / base).mkdir(parents=True)
    args = [str(pg_dump), dsn, str(stage), base, str(tree.parent), tree.name, PASSPHRASE.decode(), str(out)]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        seconds, rss = run(["bash", "-c", REFERENCE, "bash", *args], stdout, stderr)
        stdout.seek(0)
        t0, t1, t2 = (float(t) for t in stdout.read().split())
        check = ["bash", "-c", REFERENCE_CHECK, "bash", PASSPHRASE.decode(), str(out)]
        count = subprocess.run(check, capture_output=True, check=False, text=True)
    dump = (stage / base / "sddc-postgres.bkp").stat().st_size
    detail = {
        "dump_seconds": t1 - t0,
        "tar_gzip_openssl_seconds": t2 - t1,
        "dump_bytes": dump,
        "decrypts_and_lists": count.returncode == 0,
        "listed": int(count.stdout or 0),
    }
    run_ = Run("reference", "gzip -6", seconds, dump + files_bytes, out.stat().st_size, rss, detail)
    out.unlink()
    shutil.rmtree(stage)
    return run_


def recommend(runs: list[Run]) -> dict[str, Any]:
    """The fastest level whose output is within SIZE_TOLERANCE of level 3's (else of the smallest)."""
    by_level = {r.level: r for r in runs}
    yardstick = by_level["3"] if "3" in by_level else min(runs, key=lambda r: r.output_bytes)
    fit = [r for r in runs if r.output_bytes <= (1 + SIZE_TOLERANCE) * yardstick.output_bytes]
    best = max(fit, key=lambda r: r.mb_s)
    return {
        "level": int(best.level),
        "mb_s": best.mb_s,
        "size_vs": f"level {yardstick.level}",
        "size_increase": best.output_bytes / yardstick.output_bytes - 1,
    }


def bench(args: argparse.Namespace, work: Path, cluster: PostgresCluster, dsn: str) -> dict[str, Any]:
    size = args.size_mib << 20
    tree = work / "appliance"
    log(f"generating {args.size_mib} MiB: database and files tree in {work}")
    begun = time.perf_counter()
    inp = generate(tree, dsn, size)
    inp["generation_seconds"] = time.perf_counter() - begun
    _, floor = run(["/bin/true"], subprocess.DEVNULL)  # type: ignore[arg-type]
    runs: list[Run] = []
    for level in args.levels:
        log(f"ours, ISA-L level {level}")
        runs.append(ours(level, dsn, tree, work, args.profile))
    log("reference: pg_dump && tar -cz | openssl enc")
    ref = reference(cluster.bindir / "pg_dump", dsn, tree, inp["files_bytes"], work)
    inp["dump_bytes"] = (runs[0] if runs else ref).detail["dump_bytes"]
    for r in [*runs, ref]:
        r.speedup = r.mb_s / ref.mb_s
    result: dict[str, Any] = {"size_mib": args.size_mib, "input": inp, "rss_floor_mb": floor}
    if runs:
        kept = next((r for r in runs if r.level == "1"), runs[0])
        for r in runs:
            if r is not kept:
                Path(r.detail["archive"]).unlink()
        log(f"verifying the level {kept.level} archive")
        res, _, rss = run_json([sys.executable, "-m", "bench._child", "verify", kept.detail["archive"]])
        result["verify"] = {**res, "level": int(kept.level), "rss_mb": rss}
        result["recommendation"] = recommend(runs)
    from sddc_backup.archive.writer import DEFAULT_LEVEL  # late: measurements are over

    result["default_level"] = DEFAULT_LEVEL
    result["targets"] = {
        f"throughput >= {TARGET_SPEEDUP:g}x": {r.level: r.speedup >= TARGET_SPEEDUP for r in runs},
        f"peak RSS < {TARGET_RSS_MB:g} MB": {
            r.level if r is not ref else "reference": r.rss_mb < TARGET_RSS_MB for r in [*runs, ref]
        },
    }
    result["runs"] = [{**asdict(r), "mb_s": r.mb_s} for r in [*runs, ref]]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result, [*runs, ref])
    return result


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="appliance size (default 1024)")
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2, 3])
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead")
    parser.add_argument("--profile", type=Path, help="write a cProfile file per level of ours here")
    parser.add_argument("--tmpdir", type=Path, help="where the appliance and archives go (default $TMPDIR)")
    args = parser.parse_args(argv)
    if args.profile is not None:
        args.profile = args.profile.resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _terminate)
    work = Path(tempfile.mkdtemp(prefix="sddc-bench-", dir=args.tmpdir))
    cluster: PostgresCluster | None = None
    try:
        cluster = PostgresCluster()
        cluster.start()
        bench(args, work, cluster, cluster.create_database("appliance"))
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        log("cleaning up")
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
