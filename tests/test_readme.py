"""The README's examples run as written, its commands exist, and the docs' links resolve.

Every ```python block of README.md is executed verbatim, each in a fresh namespace and a fresh
temporary working directory, so the quickstarts cannot rot. ```bash blocks are not run (they
train for hours); each ``sparse-rl ...`` line in them is parsed by the command line's own parser,
and the config files it names must exist. Every relative Markdown link in README.md and docs/
must point at a file of the repository (and, with an anchor into a Markdown page, at a heading).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"

#: The README is the front door: about 12 KB, never more than this.
README_MAX_BYTES = 13_000

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
#: [text](target) and ![alt](target); the target ends at whitespace or ")".
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(text) if lang == language]


def _without_code(text: str) -> str:
    """The text with fenced blocks and inline code removed (links inside code are not links)."""
    text = _FENCE.sub("", text)
    return re.sub(r"`[^`\n]*`", "", text)


def _python_blocks() -> list[str]:
    return _blocks(README.read_text(encoding="utf-8"), "python")


def _first_line(code: str) -> str:
    for line in code.splitlines():
        if line.strip() and not line.startswith(("import ", "from ")):
            return line.strip()[:60]
    return code.splitlines()[0][:60]


def test_readme_is_a_front_door() -> None:
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move detail to docs/"
    assert len(_python_blocks()) >= 6, "one quickstart per capability"


@pytest.mark.parametrize("index", range(len(_python_blocks())), ids=lambda i: f"block{i}")
def test_readme_python_block_runs(index: int, tmp_path: Path, monkeypatch) -> None:
    code = _python_blocks()[index]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MUJOCO_GL", os.environ.get("MUJOCO_GL", "egl"))
    namespace: dict[str, object] = {"__name__": "__main__"}
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, f"README.md python block {index}", "exec"), namespace)
    elapsed = time.perf_counter() - start
    # Generous: the whole module should stay well under a minute on a loaded 2-core machine.
    assert elapsed < 60, f"README block {index} ({_first_line(code)!r}) took {elapsed:.0f} s"


def _command_lines() -> list[list[str]]:
    """Each ``sparse-rl ...`` (or ``python -m sparse_rl.runtime ...``) line of the bash blocks."""
    lines = []
    for block in _blocks(README.read_text(encoding="utf-8"), "bash"):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "sparse-rl":
                lines.append(words[1:])
            elif "-m" in words and words[words.index("-m") + 1 :][:1] == ["sparse_rl.runtime"]:
                lines.append(["deploy", *words[words.index("-m") + 2 :]])
    return lines


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[argparse.Namespace, list]:
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return parser.parse_known_args(argv)
    except SystemExit as exc:  # argparse reports a bad line by exiting
        raise AssertionError(f"`sparse-rl {shlex.join(argv)}`: {stderr.getvalue()}") from exc


def test_readme_commands_parse() -> None:
    from sparse_rl import cli
    from sparse_rl.runtime.__main__ import build_parser as runtime_parser

    lines = _command_lines()
    assert lines, "the README shows the command line"
    parser = cli.build_parser()
    for argv in lines:
        assert argv and argv[0] in cli.SUBCOMMANDS, f"unknown subcommand in `sparse-rl {argv}`"
        _, rest = _parse(parser, argv)
        if argv[0] == "deploy":
            _, rest = _parse(runtime_parser(), rest)
        elif argv[0] in cli.PASSTHROUGH:
            continue  # parsed by its own module when run
        assert not rest, f"`sparse-rl {shlex.join(argv)}`: unrecognized arguments {rest}"
        for word in argv:
            if word.endswith((".yaml", ".yml", ".toml")):
                assert (ROOT / word).is_file(), f"`sparse-rl {shlex.join(argv)}` names {word}"


def _markdown_pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for heading in re.findall(r"^#+\s+(.*?)\s*$", _FENCE.sub("", page.read_text("utf-8")), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower().replace("`", "")).replace(" ", "-")
        anchors.add(slug)
    return anchors


@pytest.mark.parametrize("page", _markdown_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_links_resolve(page: Path) -> None:
    broken = []
    for target in _LINK.findall(_without_code(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(target)
        elif not resolved.is_relative_to(ROOT):
            broken.append(f"{target} (outside the repository)")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target} (no heading '#{anchor}')")
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"
