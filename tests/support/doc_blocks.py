"""The runnable blocks of the Markdown documentation, and a shell that runs them as an operator would.

A fenced block is runnable when the line right before its opening fence is an HTML comment that names
it (the comment does not show when the Markdown is rendered):

    <!-- test: quick-start-backup -->
    ```sh
    sddc-backup backup --wait
    ```

- The info string says how the block runs: ``sh`` with bash under ``set -euo pipefail``, ``python``
  with the interpreter that runs the tests (it has the official SDK).
- The blocks of one name in one document form one script, in document order. A test can run several
  names in one process, so that the variables set by one block reach the next, and put lines of its
  own between them (``Raw``), where the reader would do something by hand.
- A line that only sets a variable that the test supplies (``export PW='…'``, ``URL=https://…``) is
  where the reader types a value of their own: it is left out, and the test's value comes in through
  the environment. Every other line runs as written.
- Blocks without a marker are not run: they need systemd, another host, or they show output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
RUNNABLE = re.compile(r"^<!-- test: ([a-z0-9-]+) -->\n```(sh|python)\n(.*?)^```[ \t]*$", re.M | re.S)
MARKER = re.compile(r"<!-- test:")
ASSIGNMENT = re.compile(r"^(?:export )?([A-Za-z_][A-Za-z0-9_]*)=")


@dataclass(frozen=True)
class Block:
    doc: Path
    name: str
    language: str
    text: str


@dataclass(frozen=True)
class Raw:
    """Lines of the test's own, run between two blocks (the reader's manual step)."""

    text: str


def blocks(doc: Path) -> list[Block]:
    """Every runnable block of ``doc``, in document order."""
    text = doc.read_text()
    found = [Block(doc, m[1], m[2], m[3]) for m in RUNNABLE.finditer(text)]
    assert len(found) == len(MARKER.findall(text)), (
        f"{doc.name}: a '<!-- test: NAME -->' marker that is not on the line right before a ```sh or "
        "```python block"
    )
    return found


def script(doc: Path, parts: tuple[str | Raw, ...], supplied: set[str]) -> tuple[str, str]:
    """The language and the text of ``parts``: the blocks of each name, or the test's own lines."""
    available = blocks(doc)
    languages, lines = set(), []
    for part in parts:
        if isinstance(part, Raw):
            lines += part.text.splitlines()
            continue
        chosen = [b for b in available if b.name == part]
        assert chosen, f"{doc.name} has no block marked {part!r}"
        for block in chosen:
            languages.add(block.language)
            lines += [line for line in block.text.splitlines() if not sets_one_of(line, supplied)]
    assert len(languages) == 1, f"{parts} mix languages: {languages}"
    return languages.pop(), "\n".join(lines) + "\n"


def sets_one_of(line: str, names: set[str]) -> bool:
    found = ASSIGNMENT.match(line)
    return bool(found and found[1] in names)


@dataclass
class Shell:
    """A working directory with a home and a TMPDIR of its own, the virtual environment's ``bin`` first
    on PATH (so ``sddc-backup`` is the checkout's), and the variables that the reader would set. The
    calling environment's ``SDDC_BACKUP_*`` and proxy variables are left out."""

    workdir: Path
    variables: dict[str, str]
    path_prefix: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        for sub in ("home", "tmp"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)

    def env(self, overrides: Mapping[str, str]) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SDDC_BACKUP_") and not k.lower().endswith("_proxy")
        }
        path = [*map(str, self.path_prefix), str(Path(sys.executable).parent), env.get("PATH", "")]
        env.update(
            PATH=os.pathsep.join(path),
            HOME=str(self.workdir / "home"),
            TMPDIR=str(self.workdir / "tmp"),
            PYTHONIOENCODING="utf-8",
        )
        env.update(self.variables)
        env.update(overrides)
        return env

    def run(
        self, doc: Path, *parts: str | Raw, timeout: float = 600, overrides: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``parts`` of ``doc`` as one script, with ``overrides`` on top of the variables."""
        overrides = dict(overrides or {})
        supplied = set(self.variables) | set(overrides)
        language, text = script(doc, parts, supplied)
        if language == "sh":
            command = ["bash", "-c", "set -euo pipefail\n" + text]
        else:
            snippet = self.workdir / "snippet.py"
            snippet.write_text(text)
            command = [sys.executable, str(snippet)]
        return subprocess.run(
            command,
            cwd=self.workdir,
            env=self.env(overrides),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,  # the tests assert on the exit status
        )
