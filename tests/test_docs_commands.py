"""Every command the documentation shows is one that works.

Each ``k400ray ...`` and ``ray ...`` command in the shell code blocks of README.md and docs/*.md
(including those quoted inside ``ray exec cluster.yaml "..."``) is parsed by the real command
line, k400ray's typer app or Ray's click CLI, without running it: the subcommand must exist and
every option and value must be accepted. Also: the documents the README promises exist, are
linked from it, and their relative links resolve. No Ray is started; the test takes seconds.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REQUIRED_DOCS = ("architecture.md", "data.md", "models.md", "cluster.md", "tracking.md")
SHELL_BLOCKS = {"", "sh", "bash", "shell", "console"}  # ```text / ```yaml blocks are output or config
TOOLS = ("k400ray", "ray")
WRAPPERS = {"sudo", "nohup", "setsid", "time", "exec", "$", "if", "then", "else", "elif", "do", "while", "until", "!"}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
OPERATOR = re.compile(r"^[();<>|&]+$")


@dataclass(frozen=True)
class DocCommand:
    where: str  # file:line
    tool: str
    argv: tuple[str, ...]  # after the tool name

    def __str__(self) -> str:
        return f"{self.where}: {self.tool} {shlex.join(self.argv)}"


def code_blocks(text: str):
    """(info string, first line number, lines) of each fenced block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^\s*```(\S*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        start, body = i + 2, []
        i += 1
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            body.append(lines[i])
            i += 1
        yield m.group(1).lower(), start, body
        i += 1


def logical_lines(start: int, lines: list[str]):
    """Join backslash continuations; yields (line number, text)."""
    buf, first = "", None
    for n, line in enumerate(lines, start):
        first = n if first is None else first
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        yield first, buf + line
        buf, first = "", None
    if buf:
        yield first, buf


def simple_commands(line: str) -> list[list[str]]:
    """Split a shell line into simple commands (at ; && || | & ( ) and redirections), comments
    dropped. Raises ValueError for unbalanced quotes."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    out, current = [], []
    for token in lexer:
        if OPERATOR.match(token):
            out.append(current)
            current = []
        else:
            current.append(token)
    out.append(current)
    return [c for c in out if c]


def find_tool_commands(line: str, tools=TOOLS, depth: int = 0) -> list[tuple[str, list[str]]]:
    """(tool, argv) of every command that starts with one of ``tools``, also inside quoted
    arguments (``ray exec cluster.yaml "cd ~/k400ray && k400ray tune ..."``) and after ``--``."""
    found = []
    for words in simple_commands(line):
        i = 0
        while i < len(words) and (ENV_ASSIGNMENT.match(words[i]) or words[i] in WRAPPERS):
            i += 1
        if i < len(words) and words[i] in tools:
            found.append((words[i], words[i + 1:]))
        for k, word in enumerate(words):
            if word == "--" and k + 1 < len(words) and words[k + 1] in tools:
                found.append((words[k + 1], words[k + 2:]))
            if depth < 2 and " " in word:
                try:
                    found += find_tool_commands(word, tools, depth + 1)
                except ValueError:
                    pass  # a quoted argument that is not shell (python -c "...")
    return found


def doc_commands(paths=DOCS) -> list[DocCommand]:
    commands = []
    for path in paths:
        rel = path.relative_to(ROOT).as_posix()
        for info, start, body in code_blocks(path.read_text(encoding="utf-8")):
            if info not in SHELL_BLOCKS:
                continue
            for n, line in logical_lines(start, body):
                try:
                    hits = find_tool_commands(line)
                except ValueError:
                    # Not shell (a diagram); only an error when it looks like a command line.
                    if re.match(r"^\s*(\$\s*)?(k400ray|ray)\s", line):
                        hits = [("unparseable", [line])]
                    else:
                        continue
                commands += [DocCommand(f"{rel}:{n}", tool, tuple(argv)) for tool, argv in hits]
    return commands


class BadCommandLine(Exception):
    """The command line would be refused: unknown command, option or value."""


def _is(exc: BaseException, name: str) -> bool:
    # typer >= 0.2x vendors its own click (typer._click): match exception classes by name.
    return any(k.__name__ == name for k in type(exc).__mro__)


def parse_cli(root, prog: str, argv: list[str]) -> None:
    """Resolve the subcommand path and parse the leaf's arguments as the CLI would, without
    invoking anything. Raises BadCommandLine with the CLI's own message."""
    ctx = root.context_class(root, info_name=prog)
    cmd, args = root, list(argv)
    while hasattr(cmd, "get_command"):  # a group
        if not args or args[0] in ("--help", "-h"):
            return
        if args[0].startswith("-"):
            raise BadCommandLine(f"option {args[0]!r} before the subcommand is not checked here")
        sub = cmd.get_command(ctx, args[0])
        if sub is None:
            raise BadCommandLine(f"no such command: {ctx.command_path} {args[0]}")
        ctx = sub.context_class(sub, info_name=args[0], parent=ctx)
        cmd, args = sub, args[1:]
    try:
        cmd.make_context(ctx.info_name, args, parent=ctx.parent)
    except Exception as exc:
        if _is(exc, "Exit"):  # --help
            return
        if _is(exc, "UsageError"):
            raise BadCommandLine(exc.format_message()) from None
        raise


def k400ray_cli():
    import typer.main

    from k400ray.cli import app

    return typer.main.get_command(app)


def ray_cli():
    from ray.scripts.scripts import cli

    return cli


COMMANDS = doc_commands()


def test_the_docs_quote_commands():
    """Guards the extractor itself: the commands the cluster walkthrough depends on are seen."""
    texts = [str(c) for c in COMMANDS]
    assert sum(c.tool == "k400ray" for c in COMMANDS) >= 10, texts
    assert any("docs/cluster.md" in t and t.endswith("k400ray tune search_spaces/aug_grid.yaml --resume") for t in texts)
    assert any("docs/cluster.md" in t and t.endswith("ray up cluster.yaml") for t in texts)
    assert not [c for c in COMMANDS if c.tool == "unparseable"], [str(c) for c in COMMANDS if c.tool == "unparseable"]


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.tool == "k400ray"], ids=str)
def test_k400ray_command_in_docs_parses(command):
    try:
        parse_cli(k400ray_cli(), "k400ray", list(command.argv))
    except BadCommandLine as exc:
        pytest.fail(f"{command}\n  -> {exc}")


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.tool == "ray"], ids=str)
def test_ray_command_in_docs_parses(command):
    try:
        parse_cli(ray_cli(), "ray", list(command.argv))
    except BadCommandLine as exc:
        pytest.fail(f"{command}\n  -> {exc}")


def test_the_checker_rejects_bad_commands():
    cli = k400ray_cli()
    for argv in (["tune", "spec.yaml", "--dry-rnu"], ["nosuchcommand"], ["index", "data"],
                 ["synth", "out", "--classes", "many"]):
        with pytest.raises(BadCommandLine):
            parse_cli(cli, "k400ray", argv)
    parse_cli(cli, "k400ray", ["index", "data", "--out", "idx", "--address", "auto"])
    with pytest.raises(BadCommandLine):
        parse_cli(ray_cli(), "ray", ["attach", "cluster.yaml", "--port", "5000"])
    assert find_tool_commands('ray exec c.yaml --tmux "cd ~/k400ray && k400ray tune s.yaml --resume"') == [
        ("ray", ["exec", "c.yaml", "--tmux", "cd ~/k400ray && k400ray tune s.yaml --resume"]),
        ("k400ray", ["tune", "s.yaml", "--resume"]),
    ]
    assert find_tool_commands("videos ──k400ray index──▶ Parquet") == []


def test_docs_exist_and_readme_links_them():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in REQUIRED_DOCS:
        assert (ROOT / "docs" / name).is_file(), f"docs/{name} is missing"
        assert f"(docs/{name})" in readme, f"README.md does not link docs/{name}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(path):
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+://|^#|^mailto:", target):
            continue
        if not (path.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)}: links to missing files {broken}"
