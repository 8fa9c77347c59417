"""Every code block of the README and the documentation runs as written.

Each ```` ```python ```` and ```` ```bash ```` block of ``README.md`` and ``docs/**/*.md`` runs in a
fresh interpreter (or bash) in an empty folder, unless the line before it says why not:
``<!-- snippet: skip (REASON) -->`` (installs, GPU-scale runs, fragments that continue another
block). Pages that are notebooks (myst-nb front matter: the tutorials, the pages with figures)
are executed by the documentation build instead, cell by cell.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = re.compile(r"^<!-- snippet: skip \((?P<reason>.+)\) -->$")
FENCE = re.compile(r"^```(?P<lang>[\w{}-]*)")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None  # the reason given, if any

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def is_notebook(text: str) -> bool:
    return text.startswith("---\n") and "file_format: mystnb" in text.split("\n---", 1)[0]


def blocks_of(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, with the skip reason of the line before each."""
    lines = path.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        skip = SKIP.match(before.strip())
        found.append(Block(path, i + 1, match["lang"], "\n".join(lines[i + 1 : end]) + "\n",
                           skip["reason"] if skip else None))  # fmt: skip
        i = end + 1
    return found


def pages() -> list[Path]:
    docs = sorted((ROOT / "docs").rglob("*.md"))
    return [ROOT / "README.md", *(p for p in docs if "_build" not in p.parts)]


def runnable_blocks() -> list[Block]:
    """The blocks to run; a block repeated word for word on another page runs once."""
    out, seen = [], set()
    for page in pages():
        if is_notebook(page.read_text()):
            continue
        for block in blocks_of(page):
            if block.lang in ("python", "bash") and block.skip is None and block.code not in seen:
                seen.add(block.code)
                out.append(block)
    return out


def run(block: Block, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
           "MPLBACKEND": "Agg"}  # fmt: skip
    if block.lang == "python":
        cmd = [sys.executable, "-c", block.code]
    else:  # the commands a reader types, with this interpreter's rlrep and python first on PATH
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        cmd = ["bash", "-euo", "pipefail", "-c", block.code]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("block", runnable_blocks(), ids=lambda b: b.id)
def test_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    done = run(block, tmp_path)
    assert done.returncode == 0, f"{block.id} failed:\n{(done.stdout + done.stderr)[-3000:]}"


def test_every_skip_gives_a_reason_and_precedes_a_block() -> None:
    """A skip marker names why, and sits right before the block it skips (not a stray one that
    skips nothing while the block it meant runs unchecked, or the reverse)."""
    for page in pages():
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            if "snippet: skip" not in line:
                continue
            assert SKIP.match(line.strip()), (
                f"{page}:{i + 1}: write <!-- snippet: skip (REASON) -->"
            )
            following = next(x for x in lines[i + 1 :] if x.strip())
            assert FENCE.match(following), f"{page}:{i + 1}: the marker is not before a code block"


def test_blocks_are_found(tmp_path: Path) -> None:
    """The parser sees runnable blocks, skipped ones with their reasons, and leaves notebooks
    to the documentation build."""
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n```python\nprint(1)\n```\n\n<!-- snippet: skip (installs (pip)) -->\n"
        "```bash\npip install x\n```\n\n```\noutput\n```\n"
    )
    found = blocks_of(page)
    assert [(b.lang, b.skip, b.code) for b in found] == [
        ("python", None, "print(1)\n"), ("bash", "installs (pip)", "pip install x\n"),
        ("", None, "output\n"),
    ]  # fmt: skip
    assert not is_notebook(page.read_text())
    assert is_notebook("---\nfile_format: mystnb\nkernelspec:\n  name: python3\n---\n# T\n")
    readme = {b.id for b in runnable_blocks()}
    assert any(i.startswith("README.md:") for i in readme)  # the README's plug-in example


@pytest.mark.slow
def test_quick_start_command_runs(tmp_path: Path) -> None:
    """The quick start's `rlrep train` command, as printed in the README, at 300 agent steps
    instead of 2,000 (its full run is the README's measured figure): the synthetic task's preset
    needs no overrides, and the run ends with its summary."""
    readme = (ROOT / "README.md").read_text()
    command = next(
        line for line in readme.splitlines() if "rlrep train --env point_mass_pixels" in line
    )
    args = shlex.split(command.split("&&", 1)[1])
    assert args[:2] == ["rlrep", "train"] and "--set" not in args
    args[args.index("--steps") + 1] = "300"
    args[args.index("--eval-every") + 1] = "300"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "rlrep.cli", *args[1:], "--no-progress"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "final evaluation after 300 frames" in done.stdout
    assert (tmp_path / "runs" / "quickstart" / "eval.csv").exists()
