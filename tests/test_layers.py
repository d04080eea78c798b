"""Dependencies point inward, and nothing imports in a circle.

- `bot/` imports only `bot/`, `playbooks/` and the ports (`integrations.base`, `integrations.errors`);
  never an entry point (`handlers/`, `scheduler/`), a concrete adapter, or an SDK of the outside
  world: it talks to Slack, Stripe, mail and the ledgers through the ports.
- `integrations/` imports nothing of `bot/` but its kernel, `bot.core`, and no entry point.
- `playbooks/` imports nothing of the rest.
- No two modules import each other, directly or around a longer loop, when they load.

Every import counts, those inside functions and under TYPE_CHECKING too; the cycle check counts
those that run when a module loads."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO

PACKAGES = ("bot", "handlers", "integrations", "playbooks", "scheduler")
PORTS = ("integrations.base", "integrations.errors")
SDKS = (
    "slack_sdk",
    "slack_bolt",
    "stripe",
    "httpx",
    "twilio",
    "starlette",
    "uvicorn",
    "apscheduler",
)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def why_forbidden(importer: str, imported: str) -> str | None:
    """The rule `importer` breaks by importing `imported`, or None when it may."""
    layer = importer.split(".")[0]
    target = imported.split(".")[0]
    if layer == "bot":
        if target in ("handlers", "scheduler"):
            return "bot/ never imports an entry point"
        if target == "integrations" and not any(_within(imported, p) for p in PORTS):
            return "bot/ imports only the ports of integrations/ (base, errors)"
        if target in SDKS:
            return "bot/ reaches the outside world only through the ports"
    if layer == "integrations":
        if target in ("handlers", "scheduler"):
            return "integrations/ never imports an entry point"
        if target == "bot" and not _within(imported, "bot.core"):
            return "integrations/ imports nothing of bot/ but bot.core"
    if layer == "playbooks" and target in PACKAGES and target != "playbooks":
        return "playbooks/ stands alone"
    return None


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, at_load_only: bool = False) -> Iterator[str]:
    """The absolute names a module imports; with at_load_only, only those run when it loads (not
    inside functions, not under TYPE_CHECKING)."""
    tree = ast.parse(source)

    def walk(node: ast.AST) -> Iterator[ast.AST]:
        for child in ast.iter_child_nodes(node):
            if at_load_only and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if (
                at_load_only
                and isinstance(child, ast.If)
                and "TYPE_CHECKING" in ast.unparse(child.test)
            ):
                yield from (n for stmt in child.orelse for n in [stmt, *walk(stmt)])
                continue
            yield child
            yield from walk(child)

    package = module if module.count(".") == 0 else module.rsplit(".", 1)[0]
    for node in walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            for alias in node.names:
                yield f"{base}.{alias.name}"


def project_modules(root: Path) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = path
    return found


def violations(root: Path) -> list[str]:
    found = []
    for module, path in project_modules(root).items():
        for imported in set(imports_of(path.read_text(), module)):
            rule = why_forbidden(module, imported)
            if rule:
                found.append(f"{path.relative_to(root)} imports {imported}: {rule}")
    return sorted(found)


def cycles(root: Path) -> list[list[str]]:
    modules = project_modules(root)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for imported in imports_of(path.read_text(), module, at_load_only=True):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != module and not module.startswith(imported + "."):
                targets.add(imported)
        graph[module] = targets
    return _strongly_connected(graph)


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: each group of two or more modules that reach each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


@pytest.mark.slow  # parses every module of the tree
def test_dependencies_point_inward() -> None:
    assert violations(REPO) == []


@pytest.mark.slow  # parses every module of the tree
def test_no_module_imports_itself_around_a_loop() -> None:
    assert cycles(REPO) == []


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("bot.reminders.approvals", "handlers.slack"),
        ("bot.planning.store", "scheduler.jobs"),
        ("bot.planning.flows", "integrations.slack_chat"),
        ("bot.escalations.notes", "slack_sdk.errors"),
        ("integrations.email_in", "bot.reminders.outbox"),
        ("integrations.llm", "bot.replies.triage"),
        ("playbooks.render", "bot.core.money"),
    ],
)
def test_each_outward_import_is_named_with_its_rule(importer: str, imported: str) -> None:
    assert why_forbidden(importer, imported)


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("bot.planning.flows", "integrations.base.slack"),
        ("bot.ledger.sync", "integrations.errors"),
        ("integrations.wiring", "bot.core.settings"),
        ("handlers.cli.daily", "integrations.wiring"),
        ("scheduler.jobs", "bot.reminders.flows"),
    ],
)
def test_inward_imports_are_allowed(importer: str, imported: str) -> None:
    assert why_forbidden(importer, imported) is None


def test_the_checks_find_a_forbidden_import_and_a_loop_in_a_tree(tmp_path: Path) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "bot" / "a.py").write_text(
        "from bot import b\n\ndef later() -> None:\n    from handlers import app\n"
    )
    (tmp_path / "bot" / "b.py").write_text("import bot.a\n")
    (tmp_path / "handlers" / "app.py").write_text("")
    assert violations(tmp_path) == [
        "bot/a.py imports handlers.app: bot/ never imports an entry point"
    ]
    assert cycles(tmp_path) == [["bot.a", "bot.b"]]
