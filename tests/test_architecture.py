"""The package map of ARCHITECTURE.md, checked by walking every import of app/ (lazy ones in
functions too): packages depend one way, a router never imports another router, and no two
modules import each other. `make lint` checks the layers with import-linter as well; this test
also covers modules that its contract does not name (a new module counts as core until
ARCHITECTURE.md and LAYERS below say otherwise).
"""

import ast
import inspect
import re
import textwrap
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app import audit

# Writes the given files (path: source) as a small app/ package and returns its folder.
Tree = Callable[[dict[str, str]], Path]

APP_DIR = Path(__file__).resolve().parent.parent / "app"

# Lowest first. A module may import its own layer and the layers below it, never one above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ()),  # every top-level module not named below: config, db, errors, events, ...
    ("identity", ("app.auth",)),
    ("customers", ("app.customers",)),  # the address book offers snapshot a customer from
    ("offers", ("app.offers",)),
    ("tracking", ("app.tracking",)),
    ("analytics / notifications", ("app.analytics", "app.notifications")),
    # A contact's data across every package, for the command and the staff site's page.
    ("privacy", ("app.privacy",)),
    ("staff site", ("app.admin",)),
    ("entry points", ("app.main", "app.cli", "app.subscribers", "app.models", "app.demo")),
]
# Siblings in one layer that must not know each other either.
INDEPENDENT = [("app.analytics", "app.notifications")]
# Imports that break the rule on purpose, each with the issue that removes it. The scan path's
# hooks (rollup and outbox feed, issue 13 section 2) are registered by app.main, so none today.
ALLOWED: set[tuple[str, str]] = set()


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str, modules: set[str]) -> Iterator[tuple[str, int]]:
    """The app modules ``path`` imports, with line numbers; ``from pkg import mod`` names mod."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield (candidate if candidate in modules else base), node.lineno


def import_graph(root: Path) -> dict[str, dict[str, int]]:
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, dict[str, int]] = {}
    for name, path in files.items():
        targets = graph.setdefault(name, {})
        for target, line in imports_of(path, name, set(files)):
            if target == root.name or target.startswith(root.name + "."):
                targets.setdefault(target, line)
    return graph


def layer_of(module: str) -> int:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return 0


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def layer_violations(graph: dict[str, dict[str, int]]) -> list[str]:
    found = []
    for source, targets in graph.items():
        for target, line in targets.items():
            if (source, target) in ALLOWED:
                continue
            upward = layer_of(target) > layer_of(source)
            siblings = {_package(source), _package(target)}
            if upward or any(siblings == set(pair) for pair in INDEPENDENT):
                found.append(
                    f"{source} (line {line}) imports {target}: "
                    f"{LAYERS[layer_of(source)][0]} may not import {LAYERS[layer_of(target)][0]}"
                )
    return found


# Where the classes that make routes come from: a module that calls one of them is a router.
# The hot paths' plain Starlette routes (LabelledRoute) count as much as an APIRouter does.
ROUTE_MAKERS = {
    "fastapi": {"APIRouter"},
    "fastapi.routing": {"APIRouter", "APIRoute"},
    "starlette.routing": {"Route", "Mount", "Router", "WebSocketRoute"},
    "app.observability": {"LabelledRoute"},
}


def _route_makers(tree: ast.AST) -> set[str]:
    """The local names a module gives to route-making classes it imports."""
    return {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module in ROUTE_MAKERS
        for alias in node.names
        if alias.name in ROUTE_MAKERS[node.module]
    }


def router_modules(root: Path) -> set[str]:
    """Modules that create an APIRouter or Starlette routes: the web's routers."""
    found = set()
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        makers = _route_makers(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in makers:
                found.add(module_name(path, root))
    return found


def router_violations(root: Path, graph: dict[str, dict[str, int]]) -> list[str]:
    routers = router_modules(root)
    return [
        f"router {source} (line {line}) imports router {target}: share a helper through "
        "app/web.py or the package's dependencies.py instead"
        for source in routers
        for target, line in graph.get(source, {}).items()
        if target in routers and target != source
    ]


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Each import cycle once (Tarjan's strongly connected components of more than one)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, {}):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _without_package_inits(graph: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    # "from app.admin import users" names the package as well as the module; the package's
    # __init__ importing nothing, only module-to-module edges can form a real cycle.
    return {
        source: {t: line for t, line in targets.items() if t != _parent(source)}
        for source, targets in graph.items()
    }


def _parent(module: str) -> str:
    return module.rpartition(".")[0]


def test_packages_depend_one_way() -> None:
    assert layer_violations(import_graph(APP_DIR)) == []


def test_routers_never_import_routers() -> None:
    assert router_violations(APP_DIR, import_graph(APP_DIR)) == []


def test_no_two_modules_import_each_other() -> None:
    assert cycles(_without_package_inits(import_graph(APP_DIR))) == []


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    """A small app/ package to break the rules in, on purpose."""

    def write(files: dict[str, str]) -> Path:
        root = tmp_path / "app"
        for name, source in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        for folder in [root, *root.rglob("*")]:
            if folder.is_dir() and not (folder / "__init__.py").exists():
                (folder / "__init__.py").write_text("")
        return root

    return write


def test_an_upward_import_is_caught(tree: Tree) -> None:
    root = tree(
        {
            "offers/service.py": "from app.analytics import conversions\n",
            "analytics/conversions.py": "from app.offers.models import Offer\n",
            "offers/models.py": "",
            "templating.py": "def f():\n    from app.offers.ids import hyphenate\n",
            "offers/ids.py": "",
        }
    )
    assert layer_violations(import_graph(root)) == [
        "app.offers.service (line 1) imports app.analytics.conversions: "
        "offers may not import analytics / notifications",
        "app.templating (line 2) imports app.offers.ids: core may not import offers",
    ]


def test_siblings_analytics_and_notifications_are_independent(tree: Tree) -> None:
    root = tree(
        {"notifications/mail.py": "import app.analytics.outbox\n", "analytics/outbox.py": ""}
    )
    assert len(layer_violations(import_graph(root))) == 1


def test_a_router_importing_a_router_is_caught(tree: Tree) -> None:
    root = tree(
        {
            "offers/router.py": "from fastapi import APIRouter\nrouter = APIRouter()\n",
            "tracking/router.py": (
                "from fastapi import APIRouter\nfrom app.offers.router import pdf_response\n"
                "router = APIRouter()\n"
            ),
        }
    )
    assert router_violations(root, import_graph(root)) == [
        "router app.tracking.router (line 2) imports router app.offers.router: share a helper "
        "through app/web.py or the package's dependencies.py instead"
    ]


def test_a_plain_starlette_router_importing_a_router_is_caught(tree: Tree) -> None:
    root = tree(
        {
            "tracking/router.py": (
                "from app.observability import LabelledRoute\n"
                "def page_routes():\n    return [LabelledRoute('/{code}', page)]\n"
            ),
            "analytics/router.py": (
                "from starlette.routing import Route\nfrom app.tracking.router import visit_of\n"
                "def routes():\n    return [Route('/c/{slug}', follow)]\n"
            ),
            "analytics/routing.py": "class Route:\n    pass\nROUTE = Route()\n",
        }
    )
    assert router_modules(root) == {"app.tracking.router", "app.analytics.router"}
    assert len(router_violations(root, import_graph(root))) == 1


def test_a_cycle_through_a_lazy_import_is_caught(tree: Tree) -> None:
    root = tree(
        {
            "admin/site.py": "from app.admin import routes\n",
            "admin/routes.py": "def page():\n    from app.admin.site import render\n",
        }
    )
    assert cycles(_without_package_inits(import_graph(root))) == [
        ["app.admin.routes", "app.admin.site"]
    ]


def _top_level_modules() -> set[str]:
    """app's own modules and packages: app.config, app.offers, ..."""
    modules = {module_name(p, APP_DIR) for p in APP_DIR.glob("*.py")} - {"app"}
    return modules | {f"app.{p.name}" for p in APP_DIR.iterdir() if (p / "__init__.py").exists()}


def test_architecture_md_names_every_module_and_package() -> None:
    text = (APP_DIR.parent / "ARCHITECTURE.md").read_text()
    named = {m for m in _top_level_modules() if f"{m.split('.')[1]}.py`" in text}
    named |= {m for m in _top_level_modules() if f"app/{m.split('.')[1]}/`" in text}
    assert _top_level_modules() - named == set()


def test_import_linter_layers_match_this_test() -> None:
    config = tomllib.loads((APP_DIR.parent / "pyproject.toml").read_text())
    (contract,) = config["tool"]["importlinter"]["contracts"]
    listed = {m.strip("() ") for layer in contract["layers"] for m in re.split("[:|]", layer)}
    assert {m for m in _top_level_modules() if layer_of(m) == 0} - listed == set()
    assert {p for _, prefixes in LAYERS for p in prefixes} <= listed


# Engine-level listeners that configure each new engine's connections (app/db.py).
LISTENERS_IN_FUNCTIONS = {"app.db"}


def listeners_in_functions(root: Path) -> list[str]:
    """SQLAlchemy event listeners attached inside a function (a route, a service), where each
    call would attach one more: listeners belong at module level, attached once at import."""
    found = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        for function in ast.walk(ast.parse(path.read_text())):
            if name in LISTENERS_IN_FUNCTIONS or not isinstance(
                function, ast.FunctionDef | ast.AsyncFunctionDef
            ):
                continue
            found += [
                f"{name} (line {node.lineno}) in {function.name}()"
                for statement in function.body  # its decorators run at module level
                for node in ast.walk(statement)
                if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"listen", "listens_for"}
                and getattr(node.func.value, "id", "") == "event"  # sqlalchemy.event
            ]
    return found


def test_no_listener_is_attached_from_a_function() -> None:
    assert listeners_in_functions(APP_DIR) == []


def test_a_listener_attached_from_a_route_is_caught(tree: Tree) -> None:
    root = tree(
        {
            "admin/analytics/pages.py": (
                "from sqlalchemy import event\n"
                "async def save(request, session):\n"
                "    event.listen(session, 'before_commit', lambda s: None)\n"
            )
        }
    )
    assert listeners_in_functions(root) == ["app.admin.analytics.pages (line 3) in save()"]


def test_the_audit_log_is_written_one_way_with_the_actor_named() -> None:
    actor = inspect.signature(audit.record).parameters["actor"]
    assert (actor.kind, actor.default) == (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.empty)
    writers = {
        module_name(path, APP_DIR)
        for path in APP_DIR.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "AuditLogEntry"
    }
    assert writers == {"app.audit"}
