"""The architecture's layering, enforced: engines and the codec do no I/O and know no commands.

(DESIGN principles 1 and 2.) This reads the source with `ast`, so it also covers imports inside
functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "jobcached"
#: The engines: their I/O (the WAL, the SQLite archive) lives in persistence/.
PURE = [*sorted((PACKAGE / "cache").glob("*.py")), *sorted((PACKAGE / "jobs").glob("*.py")),
        PACKAGE / "net" / "resp.py", PACKAGE / "net" / "replies.py", PACKAGE / "clock.py"]
FORBIDDEN = ("asyncio", "uvloop", "socket", "jobcached.server.connection", "jobcached.commands",
             "jobcached.app")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_pure_modules_import_no_io_and_no_commands(path: Path) -> None:
    for name in imported_modules(path):
        assert not any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN), (
            f"{path.name} imports {name}")
