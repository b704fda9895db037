"""The package's shape: no import cycles, the guide's import paths, a thin public surface."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import tradecore_eventbus

PACKAGE = Path(tradecore_eventbus.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module of the package that ``path`` imports, wherever the import stands (also
    inside functions and ``TYPE_CHECKING`` blocks: a cycle there is still a cycle of design)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            # `from pkg import module` depends on the module; `from pkg import name`, on pkg.
            candidates = [
                f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target
                for a in node.names
            ]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found.update(c for c in candidates if c in MODULES)
    found.discard(name)
    return found


MODULES = {module_name(p): p for p in [*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.pyi")]}
GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def is_package_init(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def test_no_import_cycles() -> None:
    # Package __init__ modules that only re-export are left out: importing a submodule
    # imports its parents, which is not a dependency of the submodule's code.
    graph = {
        n: {d for d in deps if not is_package_init(d)}
        for n, deps in GRAPH.items()
        if not is_package_init(n)
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert cycles == []


def test_internal_modules_never_import_the_public_ones() -> None:
    """The public modules are re-exports of ``_internal``; the other way round would make the
    public surface part of the implementation."""
    public = {n for n in MODULES if "._internal" not in n and not n.endswith("._core")}
    public -= {"tradecore_eventbus.exceptions"}  # the exception hierarchy is defined there
    offenders = {
        n: sorted(GRAPH[n] & public) for n in MODULES if "._internal" in n and GRAPH[n] & public
    }
    assert offenders == {}


GUIDE_IMPORTS = [
    ("tradecore_eventbus.event_bus", ["EventBus", "get_event_bus", "set_event_bus"]),
    ("tradecore_eventbus.redpanda_adapter", ["RedpandaTransportAdapter"]),
    ("tradecore_eventbus.memory_adapter", ["MemoryTransportAdapter"]),
    (
        "tradecore_eventbus.eventbus_transport_config",
        ["EventBusConfig", "TransportConfig", "TopicConfig", "TopicType"],
    ),
    ("tradecore_eventbus.event_registry", ["EVENT_TYPE_TO_PYDANTIC_MODEL", "register_event"]),
    ("tradecore_eventbus.base_model", ["BaseEvent"]),
    ("tradecore_eventbus.retry", ["RetryConfig"]),
    ("tradecore_eventbus.worker_consumer_groups", ["WorkerType"]),
    ("tradecore_eventbus.outbox_service", ["OutboxService"]),
    ("tradecore_eventbus.exceptions", ["EventBusError", "PublishError"]),
]


@pytest.mark.parametrize(("module", "names"), GUIDE_IMPORTS)
def test_the_guides_import_paths_work(module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    for name in names:
        assert getattr(imported, name) is not None, f"{module}.{name}"
        assert name in imported.__all__


def test_top_level_names_are_the_same_objects_as_the_guide_modules() -> None:
    from tradecore_eventbus import event_bus, redpanda_adapter

    assert tradecore_eventbus.EventBus is event_bus.EventBus
    assert tradecore_eventbus.RedpandaTransportAdapter is redpanda_adapter.RedpandaTransportAdapter
    for name in tradecore_eventbus.__all__:
        assert hasattr(tradecore_eventbus, name), name
