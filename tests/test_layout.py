"""The layout keeps explaining itself: layers by folder, no cycles, modules one can read.

`test_architecture.py` checks what each top-level package may load at run time; this
file reads the source (every import statement, including the lazy ones inside
functions) and checks the finer rules that the folder names promise.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gateway", "nlp", "storage", "review_tui")
MAX_LINES = 300
# A longer module must say why at its top, in its docstring, with this phrase.
LONG_REASON = "Why this module is long:"

# importer prefix → prefixes it must never import (lazily or not).
FORBIDDEN = {
    # Supervising processes knows nothing of what they run: the command line wires it.
    "gateway.supervise": (
        "gateway.inbound",
        "gateway.conversation",
        "gateway.outbound",
        "gateway.cli",
        "gateway.metrics",
    ),
    "gateway.inbound": (
        "gateway.conversation",
        "gateway.outbound",
        "gateway.cli",
        "gateway.metrics",
    ),
    "gateway.conversation": ("gateway.outbound", "gateway.cli", "gateway.metrics"),
    "gateway.outbound": ("gateway.conversation", "gateway.cli", "gateway.metrics"),
    # Metrics read the queue and Prometheus; only the command line starts them.
    "gateway.metrics": (
        "gateway.inbound",
        "gateway.conversation",
        "gateway.outbound",
        "gateway.cli",
        "gateway.headers",
        "gateway.runner",
        "review_tui",
    ),
    "gateway.config": ("gateway.",),
    "gateway.headers": ("gateway.",),
    "gateway.runner": ("gateway.",),
    "storage": ("gateway", "nlp", "review_tui"),
    "nlp": ("gateway", "storage", "review_tui"),
    "review_tui": ("gateway",),
}
# Exceptions with a reason: the sender side (its `sent` module) appends the Sent copy over
# the IMAP login code.
ALLOWED = {("gateway.outbound.sent", "gateway.inbound.imap.auth")}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield module_name(path), path


MODULES = dict(sources())


def resolve(importer: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Our modules that one import statement loads (a package's module, not its parents)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in MODULES]
    base = node.module or ""
    if node.level:
        is_package = MODULES[importer].name == "__init__.py"
        anchor = importer.split(".")
        anchor = anchor if is_package else anchor[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, *([base] if base else [])])
    found = []
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        if candidate in MODULES:
            found.append(candidate)
        elif base in MODULES:
            found.append(base)
    return sorted(set(found))


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:` (never imported at run time)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for child in node.orelse:
                yield child
                yield from _runtime_nodes(child)
            continue
        yield node
        yield from _runtime_nodes(node)


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for node in _runtime_nodes(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                targets.update(resolve(name, node))
        edges[name] = targets - {name}
    return edges


def _within(name: str, prefix: str) -> bool:
    return name == prefix.rstrip(".") or name.startswith(
        prefix if prefix.endswith(".") else prefix + "."
    )


def test_each_folder_imports_only_what_its_layer_allows() -> None:
    offenders = []
    for importer, targets in graph().items():
        for prefix, banned in FORBIDDEN.items():
            if not _within(importer, prefix):
                continue
            for target in sorted(targets):
                if (importer, target) in ALLOWED:
                    continue
                if _within(target, prefix):
                    continue  # a package may use its own modules (gateway.config's loader)
                if any(_within(target, b) for b in banned):
                    offenders.append(f"{importer} imports {target}")
    assert offenders == []


def test_no_import_cycles_between_modules() -> None:
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = iter(range(10**6))

    def visit(node: str) -> None:
        index[node] = low[node] = next(counter)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(edges):
        if name not in index:
            visit(name)
    assert cycles == []


def test_the_layout_checks_can_fail() -> None:
    """The graph really sees lazy imports inside functions (the ones cycles hide in)."""
    edges = graph()
    assert "gateway.conversation.pipeline" in edges["gateway.cli.runtime"]
    assert "gateway.inbound.imap.auth" in edges["gateway.outbound.sent"]


def test_modules_are_short_or_say_why() -> None:
    long = []
    for name, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if LONG_REASON not in doc:
            long.append(f"{name} ({lines} lines)")
    assert long == []


def test_every_package_says_what_lives_there() -> None:
    silent = [
        name
        for name, path in MODULES.items()
        if path.name == "__init__.py" and not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert silent == []


def test_shared_test_helpers_import_without_pytest() -> None:
    """Benchmarks use tests/support without a test runner installed."""
    helpers = sorted(p.stem for p in (ROOT / "tests" / "support").glob("*.py"))
    assert {"dovecot", "postgres", "net", "relay"} <= set(helpers)
    code = (
        "import json, sys\n"
        + "".join(f"import tests.support.{h}\n" for h in helpers if h != "__init__")
        + "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pytest', '_pytest'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
