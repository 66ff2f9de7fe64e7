"""The two request codecs the tests run against: the pure-Python one and the compiled twin.

`CODECS` parametrizes a test over both (`codec` fixture, module-scoped so Hypothesis tests can
use it). The compiled codec is built at install when a C compiler is there; when it is missing
its parameter fails under JOBCACHED_REQUIRE_EXTERNAL (as in CI) and is skipped, with the
reason, otherwise, the way tests treat a missing redis-server.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from jobcached.net import resp

CODECS = ["python", "compiled"]


@dataclass(frozen=True)
class Codec:
    """One implementation's `RequestParser` class and `encode` function."""

    name: str
    RequestParser: Any
    encode: Any


def compiled_module() -> ModuleType:
    """`jobcached.net._speedups`, or fail/skip the test when it was not built."""
    try:
        return importlib.import_module("jobcached.net._speedups")
    except ImportError as exc:
        message = (f"the compiled codec is not built ({exc}): install with a C compiler "
                   f"(make install)")
        if os.environ.get("JOBCACHED_REQUIRE_EXTERNAL"):
            pytest.fail(message)
        pytest.skip(message)


def load_codec(name: str) -> Codec:
    module = resp if name == "python" else compiled_module()
    return Codec(name, module.RequestParser, module.encode)
