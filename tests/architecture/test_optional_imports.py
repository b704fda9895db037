"""Libraries that an extra brings are imported only through ``_internal/extras.require``, so
that every feature reports a missing extra the same way (decision 72). Imports for type
checking only (inside ``if TYPE_CHECKING:``) do not run and are allowed."""

from __future__ import annotations

import ast
from pathlib import Path

import tradecore_eventbus
from tradecore_eventbus._internal.extras import EXTRAS

PACKAGE = Path(tradecore_eventbus.__file__).parent
HELPER = PACKAGE / "_internal" / "extras.py"
OPTIONAL = {module for modules in EXTRAS.values() for module in modules}


def is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def run_time_imports(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if is_type_checking_block(node):
            assert isinstance(node, ast.If)
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.append((node.lineno, node.module))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_optional_libraries_are_imported_only_through_require() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}:{line}: {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != HELPER
        for line, name in run_time_imports(ast.parse(path.read_text()))
        if name.partition(".")[0] in OPTIONAL
    ]
    assert offenders == []


def test_the_check_finds_a_direct_import_and_ignores_type_checking_blocks() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import asyncpg\n"
        "def f():\n    import aiosqlite\n"
    )
    assert run_time_imports(ast.parse(source)) == [(1, "typing"), (5, "aiosqlite")]
