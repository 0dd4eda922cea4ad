"""The package's import graph has no circle, and docs/architecture.md names its modules.

An arrow A → B is any ``from . import B``, ``from .B import x`` or ``import chaosrnn_utils.B``
in A, at module level or inside a function (a lazy import that runs back up closes a circle
as surely as one at the top). Arrows into the package root (``chaosrnn_utils/__init__.py``,
the façade that re-exports the public names) are left out: it sits above every module, and
:mod:`chaosrnn_utils.sweeps` reads its ``__version__`` at call time on purpose."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import chaosrnn_utils

PACKAGE = Path(chaosrnn_utils.__file__).parent
ROOT = PACKAGE.parent
NAME = PACKAGE.name


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a subpackage by its ``__init__``)."""
    out = {}
    for p in sorted(PACKAGE.rglob("*.py")):
        parts = p.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def import_graph() -> dict[str, set[str]]:
    """module → the package's modules it imports (module-level and lazy), the root left out."""
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[:len(here) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                for alias in node.names:
                    sub = f"{mod}.{alias.name}"
                    targets.append(sub if sub in mods else mod)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            graph[name].update(t for t in targets if t in mods and t not in (name, NAME))
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` as a list of modules (first = last), or None (depth-first)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        state[m] = 2
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_the_circle_finder_finds_a_circle():
    """The checker itself: a planted circle, a lazy arrow included, is found; a tree is not."""
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_lazy_imports():
    """A function-level import counts: notebook imports plotting only inside a function."""
    assert f"{NAME}.plotting" in import_graph()[f"{NAME}.notebook"]


def test_no_import_circle_among_the_modules():
    circle = find_circle(import_graph())
    assert circle is None, "import circle: " + " → ".join(circle or [])


PAGE = ROOT / "docs" / "architecture.md"
_HEAD = re.compile(r"^- `([\w.]+)`", re.M)
_DOTTED = re.compile(r"`([A-Za-z_]\w*(?:\.\w+)+)`")


def test_the_architecture_page_names_every_module_and_only_modules():
    """docs/architecture.md has one bullet per module (its name first): every module of the
    package is there, and every bullet names a module that exists."""
    text = PAGE.read_text(encoding="utf-8")
    named = {f"{NAME}.{m}" for m in _HEAD.findall(text)}
    have = set(modules()) - {NAME}
    assert not named - have, f"the page names modules that do not exist: {named - have}"
    assert not have - named, f"modules missing from the page: {have - named}"


def test_the_architecture_page_names_functions_that_exist():
    """Every ``module.name`` the page cites (a module of the package, then an attribute)
    exists, so the paths it walks through stay true."""
    text = PAGE.read_text(encoding="utf-8")
    mods = {m.removeprefix(f"{NAME}.") for m in modules()}
    cited = 0
    for token in _DOTTED.findall(text):
        if re.search(r"\.(json|csv|md|py|pt|gz|txt)$", token):
            continue  # a file such as paper.json
        parts = token.split(".")
        k = max((i for i in range(1, len(parts)) if ".".join(parts[:i]) in mods), default=0)
        if not k:
            continue  # not a module's attribute
        module = importlib.import_module(f"{NAME}.{'.'.join(parts[:k])}")
        obj = module
        for attr in parts[k:]:
            assert hasattr(obj, attr), f"docs/architecture.md cites {token}: no {attr}"
            obj = getattr(obj, attr)
        cited += 1
    assert cited >= 20


def test_the_architecture_page_is_in_the_book():
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert re.search(r"^architecture$", index, re.M)
