"""Logs: one JSON object per line on stderr (or plain text), with structured fields.

Call sites pass fields through `extra=`: `log.warning("closing client", extra={"client": a})`.
The JSON formatter writes time, level, logger, event and those fields, so logs can be grepped
by a human and parsed by a collector without regexes.
"""

from __future__ import annotations

import json
import logging
import sys
import time

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message"}
_LEVELS = {"debug": logging.DEBUG, "verbose": logging.DEBUG, "info": logging.INFO,
           "notice": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


class JsonFormatter(logging.Formatter):
    """`{"time": ..., "level": ..., "logger": ..., "event": ..., <fields>}`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger: event key=value ...` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{stamp} {record.levelname.lower():7} {record.name}: {record.getMessage()}"
        if extra:
            line += " " + extra
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level: str, fmt: str) -> None:
    """Send the `jobcached` loggers to stderr in the chosen format and level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("jobcached")
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
    root.propagate = False


def set_level(level: str) -> None:
    logging.getLogger("jobcached").setLevel(_LEVELS[level])
