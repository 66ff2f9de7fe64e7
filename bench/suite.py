"""The Suite interface and the registry `bench.run` chooses from.

A suite is one comparison: it starts the servers it needs through the `Context`, drives them, and
returns a list of flat result rows (dicts of JSON values). It also declares the columns that
`RESULTS.md` shows for those rows, so the report can be rebuilt from the JSON files alone, without
importing the suite that produced them.

Adding a suite: subclass `Suite` (or instantiate `RedisBenchmarkSuite` from `bench.redisbench`),
call `register()` on an instance in a module under `bench/suites/`, and import that module in
`bench/suites/__init__.py`. Honour `ctx.quick`: every registered suite runs in `make bench-quick`,
which must stay under three minutes on a 2-core machine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from bench.context import Context

Row = dict[str, Any]
"""One result line: JSON-serialisable values keyed by column key (extra keys are kept in JSON)."""

Kind = Literal["text", "int", "rps", "us", "ms", "ratio", "percent", "bytes"]
"""How `report.py` formats a cell: rps with thousands separators, µs/ms/ratios to 2-3 places."""


@dataclass(frozen=True)
class Column:
    """A column of a suite's table in RESULTS.md: row key, header text and formatting kind."""

    key: str
    header: str
    kind: Kind = "text"

    def to_json(self) -> dict[str, str]:
        return asdict(self)


class SuiteSkipped(Exception):
    """Raised by `Suite.run` when a peer it needs is not installed; the run goes on without it."""


class Suite(ABC):
    """One named comparison. Subclasses set these attributes (class or instance) and `run`."""

    name: str
    description: str
    columns: tuple[Column, ...]
    required_binaries: tuple[str, ...] = ()
    """Executables that must be on PATH; `bench.run` checks them before starting anything."""

    @abstractmethod
    def parameters(self, quick: bool) -> dict[str, Any]:
        """The knobs of this run (request counts, clients, ...), recorded in the JSON file."""

    @abstractmethod
    def run(self, ctx: Context) -> list[Row]:
        """Start servers via `ctx`, measure, return rows; `ctx` stops the servers afterwards."""


_REGISTRY: dict[str, Suite] = {}


_Run = TypeVar("_Run")


def median_run(runs: Iterable[_Run], ok: Callable[[_Run], bool],
               key: Callable[[_Run], float]) -> _Run:
    """Of repeated runs, the one with the median `key` among those that succeeded (the lower
    middle of an even count); the first failed one if none succeeded."""
    runs = list(runs)
    good = sorted(filter(ok, runs), key=key)
    return good[(len(good) - 1) // 2] if good else runs[0]


def register(suite: Suite) -> Suite:
    """Add a suite to the registry (module import time); names must be unique."""
    if suite.name in _REGISTRY:
        raise ValueError(f"bench suite {suite.name!r} registered twice")
    _REGISTRY[suite.name] = suite
    return suite


def all_suites() -> list[Suite]:
    """Registered suites in registration order (the order `--all` runs them and RESULTS.md)."""
    import bench.suites  # noqa: F401  (registers the built-in suites)

    return list(_REGISTRY.values())


def get(name: str) -> Suite:
    """The suite called `name`; KeyError if there is none."""
    for suite in all_suites():
        if suite.name == name:
            return suite
    raise KeyError(name)
