"""The table and notes that ``bench/archive.py`` prints (see bench/README.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

MB = 1e6
TARGET_SPEEDUP = 3.0
TARGET_RSS_MB = 150.0


@dataclass
class Run:
    pipeline: str
    level: str
    seconds: float
    input_bytes: int
    output_bytes: int
    rss_mb: float  # ru_maxrss of the child: its largest process, itself or one it waited for
    detail: dict[str, Any] = field(default_factory=dict)
    speedup: float = 0.0

    @property
    def mb_s(self) -> float:
        return self.input_bytes / MB / self.seconds


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells))


def report(result: dict[str, Any], runs: list[Run]) -> None:
    inp, floor = result["input"], result["rss_floor_mb"]
    print(
        f"\nAppliance: {inp['dump_bytes'] / MB:.1f} MB of pg_dump (plain) + {inp['files_bytes'] / MB:.1f} MB"
    )
    print(f"in {inp['files']} files, generated in {inp['generation_seconds']:.0f} s; {os.cpu_count()} CPUs.")
    print(f"Targets: throughput >= {TARGET_SPEEDUP:g}x the reference's; peak RSS < {TARGET_RSS_MB:g} MB.\n")
    rows = [["pipeline", "level", "seconds", "MB/s", "vs ref", "output MB", "ratio", "RSS MB", "own MB"]]
    rows[0] += [">=3x", "RSS<150"]
    for r in runs:
        own = f"{r.detail['hwm_mb']:.1f}" if "hwm_mb" in r.detail else ""
        fast = ("PASS" if r.speedup >= TARGET_SPEEDUP else "FAIL") if r.pipeline == "ours" else ""
        ratio = f"{r.input_bytes / r.output_bytes:.2f}x"
        rows.append([r.pipeline, r.level, f"{r.seconds:.2f}", f"{r.mb_s:.1f}", f"{r.speedup:.2f}x"])
        rows[-1] += [f"{r.output_bytes / MB:.1f}", ratio, f"{r.rss_mb:.1f}", own, fast]
        rows[-1].append("PASS" if r.rss_mb < TARGET_RSS_MB else "FAIL")
    _table(rows)
    print("\nMB/s: input (pg_dump + files) per second; vs ref: MB/s over the reference's; ratio: in/out.")
    print("RSS MB: ru_maxrss from wait4, the largest single process of the run (not a sum), with a floor")
    print(f"of {floor:.1f} MB inherited from this process. own MB: the Python process of ours alone (VmHWM).")
    for r in runs:
        d = r.detail
        if r.pipeline == "ours":
            pass_1 = "n/a" if d["pass_1_seconds"] is None else f"{d['pass_1_seconds']:.1f} s"
            print(f"ours level {r.level}: of which pg_dump pass 1 (measuring) {pass_1}")
            continue
        check = "OK" if d["decrypts_and_lists"] else "FAILED"
        print(f"reference: pg_dump {d['dump_seconds']:.1f} s, then tar -cz | openssl enc ", end="")
        print(
            f"{d['tar_gzip_openssl_seconds']:.1f} s; openssl enc -d | tar -tz: {check}, {d['listed']} members"
        )
    if v := result.get("verify"):
        rate, content = v["archive_bytes"] / MB / v["seconds"], v["content_bytes"] / MB / v["seconds"]
        print(f"verify (level {v['level']}): {v['seconds']:.2f} s, {rate:.1f} MB/s of archive, ", end="")
        print(f"{content:.1f} MB/s of content, {v['members']} members, RSS {v['rss_mb']:.1f} MB: OK")
    if rec := result.get("recommendation"):
        print(f"\nRecommended default level: {rec['level']} ({rec['mb_s']:.1f} MB/s, output ", end="")
        print(
            f"{rec['size_increase']:+.1%} vs {rec['size_vs']}); DEFAULT_LEVEL is {result['default_level']}."
        )
