"""Which request codec runs: the compiled one, or the pure-Python one it mirrors.

`jobcached.net._speedups` (Cython, built at install when the machine has a compiler) frames
requests and encodes the common replies in C; `jobcached.net.resp` is the complete pure-Python
codec, always there. The server takes the compiled codec when it imports, unless
`JOBCACHED_PURE_PYTHON` is set to anything but `0` or empty (to compare the two, or to rule the
compiled one out). `REQUEST_PATH` names the one in use (`compiled` or `python`), as
`INFO server` reports it in `request_path`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

#: the environment variable that forces the pure-Python codec
PURE_PYTHON_ENV = "JOBCACHED_PURE_PYTHON"


def pure_python_forced() -> bool:
    """True when the environment asks for the pure-Python codec."""
    return os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0")


if TYPE_CHECKING:
    # Both codecs have the same interface; the pure one is its typed description.
    from jobcached.net.resp import RequestParser, encode

    REQUEST_PATH: str
elif pure_python_forced():
    from jobcached.net.resp import RequestParser, encode

    REQUEST_PATH = "python"
else:
    try:
        from jobcached.net._speedups import RequestParser, encode
    except ImportError:  # not built (no compiler at install): the pure-Python codec
        from jobcached.net.resp import RequestParser, encode

        REQUEST_PATH = "python"
    else:
        REQUEST_PATH = "compiled"

__all__ = ["PURE_PYTHON_ENV", "REQUEST_PATH", "RequestParser", "encode", "pure_python_forced"]
