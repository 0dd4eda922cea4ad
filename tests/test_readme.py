"""Every command the README shows parses: ``python3 tasks.py <cmd> …`` and ``python -m
chaosrnn_utils <cmd> …`` lines in its code blocks and inline code, read with the command
line's own parser (:func:`chaosrnn_utils.pipeline._build_parser`), ``-p NAME VALUE``
checked against the parameters cells of the notebooks it selects; the README stays short and
names no tool of ours beyond the repository."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from builders import load_tasks  # noqa: E402

from chaosrnn_utils import pipeline

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
_FENCE = re.compile(r"```(?:bash|sh|console)?\n(.*?)```", re.S)
_INLINE = re.compile(r"`((?:python3? |\.venv/bin/python )[^`]+)`")




def commands(text: str) -> list[str]:
    """The command lines of ``text``: each line of a shell code block (comments cut, ``\\``
    continuations joined) and each inline code span that starts with python."""
    out = []
    for block in _FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                out.append(line)
    out += [m.strip() for m in _INLINE.findall(text)]
    return out


def _project_args(line: str) -> list[str] | None:
    """The arguments after ``tasks.py`` or ``-m chaosrnn_utils`` (None for another command)."""
    words = shlex.split(line)
    for k, w in enumerate(words):
        if w.endswith("tasks.py"):
            return ["tasks.py", *words[k + 1:]]
        if w == "-m" and k + 1 < len(words) and words[k + 1] == "chaosrnn_utils":
            return words[k + 2:]
    return None


def check_command(line: str) -> None:
    """Raise (SystemExit from argparse, ValueError from the checks) when ``line`` does not
    parse."""
    args = _project_args(line)
    if args is None:
        raise ValueError(f"not a command of this project: {line}")
    if args and args[0] == "tasks.py":
        args = args[1:]
        assert args, line
        if args[0] in ("test", "book", "setup", "fetch-data"):
            return
        if args[0] not in ("reproduce", "sweep", "train"):
            raise ValueError(f"tasks.py has no command {args[0]!r}: {line}")
    ns = pipeline._build_parser().parse_args(args)
    if ns.command == "reproduce" and ns.parameter:
        given = pipeline._given_parameters(ns.parameter, ns.seed)
        selected = pipeline.select_notebooks(ns.only)
        for nb in selected:
            declared = pipeline.notebook_parameters(nb)
            pipeline.check_parameters(nb, {k: v for k, v in given.items() if k in declared})
        if not any(set(given) <= set(pipeline.notebook_parameters(nb)) for nb in selected):
            raise ValueError(f"no selected notebook declares {sorted(given)}: {line}")


def test_the_readme_shows_commands():
    cmds = commands(README)
    assert "python3 tasks.py reproduce" in cmds and "python3 tasks.py test" in cmds
    assert len(cmds) >= 6


@pytest.mark.parametrize("line", commands(README))
def test_every_readme_command_parses(line):
    if _project_args(line) is None:
        pytest.skip(f"not a command of this project: {line}")
    check_command(line)


@pytest.mark.parametrize("line", [
    "python3 tasks.py reproduce --profle medium",
    "python3 tasks.py reproduce --only 06 -p datset roessler",
    "python3 tasks.py frobnicate",
    "python3 tasks.py train --profile huge",
])
def test_a_wrong_command_is_caught(line):
    with pytest.raises((SystemExit, ValueError)):
        check_command(line)


def test_tasks_knows_the_commands_checked_here():
    doc = load_tasks().__doc__
    for cmd in ("reproduce", "test", "book", "fetch-data", "sweep", "train"):
        assert f"tasks.py {cmd}" in doc


def test_the_readme_is_short_and_about_the_project():
    assert len(README.splitlines()) <= 150
    lowered = README.lower()
    for word in ("issue", "lent", "device tool", "gpu window"):
        assert word not in lowered, word
