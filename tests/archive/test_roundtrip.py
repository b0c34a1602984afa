"""Round trips through the real writer and reader: what comes back is identical in bytes, modes,
mtimes and symbolic links, and the files open with the plain OpenSSL and tar tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sddc_backup.archive.extract import SafeExtractor
from sddc_backup.archive.reader import read_archive
from sddc_backup.archive.writer import write_archive
from sddc_backup.services.components.paths import PathsComponent, member_name
from tests.support.recovery import openssl_listing

PASS = b"VMw@re1!VMw@re1!"
BASE = "vcf-backup-test-2026-11-27-08-00-00"

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._- ", min_size=1, max_size=12).filter(
    lambda n: n not in (".", "..") and not n.startswith(" ")
)
files = st.tuples(st.binary(max_size=3000), st.sampled_from([0o600, 0o640, 0o644, 0o755, 0o700]))
trees = st.recursive(
    files,
    lambda children: st.dictionaries(names, children, max_size=4),
    max_leaves=12,
)


def build(path: Path, node: object, draw: st.DataObject) -> None:
    """Create ``node`` at ``path``: a dict is a directory (with a relative link to its first child, as
    configuration trees often have), a (bytes, mode) pair a file; every mtime has microseconds."""
    if isinstance(node, dict):
        path.mkdir()
        for name, child in node.items():
            build(path / name, child, draw)
        link = path / "current.link"
        if node and not link.exists():
            link.symlink_to(sorted(node)[0])
        path.chmod(draw.draw(st.sampled_from([0o755, 0o750, 0o700])))
    else:
        data, mode = node  # type: ignore[misc]
        path.write_bytes(data)
        path.chmod(mode)
    seconds = draw.draw(st.integers(min_value=0, max_value=4_000_000_000))
    micros = draw.draw(st.integers(min_value=0, max_value=999_999))
    ns = seconds * 1_000_000_000 + micros * 1000
    os.utime(path, ns=(ns, ns), follow_symlinks=False)


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything that must survive: type, bytes or link target, permission bits, mtime in µs."""
    found: dict[str, tuple[object, ...]] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st_ = path.lstat()
        rel = path.relative_to(root).as_posix()
        mtime = st_.st_mtime_ns // 1000
        if path.is_symlink():
            found[rel] = ("link", str(path.readlink()), mtime)
        elif path.is_dir():
            found[rel] = ("dir", st_.st_mode & 0o7777, mtime)
        else:
            found[rel] = ("file", path.read_bytes(), st_.st_mode & 0o7777, mtime)
    return found


def archive_of(root: Path) -> list[bytes]:
    chunks: list[bytes] = []
    write_archive(BASE, {"product": "sddc-backup"}, [PathsComponent([root])], PASS, chunks.append, mtime=0)
    return chunks


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=st.dictionaries(names, trees, min_size=1, max_size=4), data=st.data())
def test_trees_come_back_identical(tree: dict[str, object], data: st.DataObject) -> None:
    work = Path(tempfile.mkdtemp())
    try:
        source = work / "live" / "etc"
        source.parent.mkdir()
        build(source, tree, data)
        chunks = archive_of(source)
        extractor = SafeExtractor(work / "staging")
        report = read_archive(chunks, PASS, extractor)
        extractor.close()
        assert not report.legacy
        restored = work / "staging" / member_name(source)
        assert snapshot(restored) == snapshot(source)
    finally:
        shutil.rmtree(work)


def test_openssl_and_tar_list_the_documented_layout(tmp_path: Path) -> None:
    tree = tmp_path / "conf"
    tree.mkdir()
    (tree / "app.properties").write_text("a=1\n")
    archive = tmp_path / f"{BASE}.tar.gz"
    archive.write_bytes(b"".join(archive_of(tree)))
    (tmp_path / "pass").write_bytes(PASS + b"\n")
    listing = openssl_listing(archive, tmp_path / "pass")
    inner = member_name(tree)
    assert listing == [
        f"{BASE}/metadata.json",
        f"{BASE}/{inner}/",
        f"{BASE}/{inner}/app.properties",
        f"{BASE}/manifest.json",
    ]


def test_gnu_tar_restores_modes_mtimes_and_links_from_our_archive(tmp_path: Path) -> None:
    tree = tmp_path / "conf"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "secret").write_bytes(b"s3cret")
    (tree / "sub" / "secret").chmod(0o600)
    (tree / "current").symlink_to("sub")
    os.utime(tree / "sub" / "secret", ns=(1_700_000_000_123_456_000,) * 2)
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"".join(archive_of(tree)))
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(
        f"openssl enc -d -aes-256-cbc -md sha256 -pass pass:{PASS.decode()} -in {archive}"
        f" | tar -xzp -C {out}",
        shell=True,
        check=True,
        capture_output=True,
    )
    restored = out / BASE / member_name(tree)
    assert (restored / "sub" / "secret").read_bytes() == b"s3cret"
    assert (restored / "sub" / "secret").stat().st_mode & 0o777 == 0o600
    assert (restored / "sub" / "secret").stat().st_mtime_ns // 1000 == 1_700_000_000_123_456
    assert str((restored / "current").readlink()) == "sub"
    manifest = json.loads((out / BASE / "manifest.json").read_text())
    lines = (out / BASE / "manifest.json").read_text().splitlines()
    # One member per line, so that an operator can grep it: the opening line, each member, the close.
    assert len(lines) == len(manifest["members"]) + 2
    assert [json.loads(line.rstrip(","))["name"] for line in lines[1:-1]] == [
        f"{BASE}/metadata.json",
        f"{BASE}/{member_name(tree)}",
        f"{BASE}/{member_name(tree)}/current",
        f"{BASE}/{member_name(tree)}/sub",
        f"{BASE}/{member_name(tree)}/sub/secret",
    ]
