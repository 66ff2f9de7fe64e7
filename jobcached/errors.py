"""The one error hierarchy.

Two sides, as in h11: a `ProtocolError` means the byte stream itself is broken and closes the
connection after one `-ERR Protocol error: ...` reply; a `CommandError` is a normal reply
(`-CODE message`) and the connection carries on. Engines raise domain errors (subclasses of
`CommandError` with their own wire code, like faktory's KnownError); only the network layer turns
them into bytes.
"""

from __future__ import annotations


class JobcachedError(Exception):
    """Base of every error this package raises on purpose."""


class ProtocolError(JobcachedError):
    """The client sent bytes we cannot frame; reply once and close the connection."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def wire(self) -> str:
        return f"ERR Protocol error: {self.message}"


class CommandError(JobcachedError):
    """A command failed; the reply is `-<code> <message>` and nothing changed."""

    code = "ERR"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def wire(self) -> str:
        return f"{self.code} {self.message}"


class SyntaxErr(CommandError):
    def __init__(self) -> None:
        super().__init__("syntax error")


class WrongTypeError(CommandError):
    code = "WRONGTYPE"

    def __init__(self) -> None:
        super().__init__("Operation against a key holding the wrong kind of value")


class NotIntegerError(CommandError):
    def __init__(self) -> None:
        super().__init__("value is not an integer or out of range")


class NotFloatError(CommandError):
    def __init__(self) -> None:
        super().__init__("value is not a valid float")


class OutOfMemoryError(CommandError):
    code = "OOM"

    def __init__(self) -> None:
        super().__init__("command not allowed when used memory > 'maxmemory'.")


class NoAuthError(CommandError):
    code = "NOAUTH"

    def __init__(self) -> None:
        super().__init__("Authentication required.")


class StaleLeaseError(CommandError):
    """A worker used a lease token that is no longer current (fencing)."""

    code = "STALE"


class NotUniqueError(CommandError):
    """An idempotency key was reused with a different payload."""

    code = "NOTUNIQUE"


class ConfigError(JobcachedError):
    """A configuration value is invalid; at startup this exits with code 2."""


class StartupError(JobcachedError):
    """The machine refuses a start (data dir locked or not a directory, address not bindable);
    the message is the one line printed before exiting with code 1."""


class NoSuchKeyError(CommandError):
    """RENAME and friends were given a source key that does not exist."""

    def __init__(self) -> None:
        super().__init__("no such key")


class SnapshotError(JobcachedError):
    """A cache snapshot file is not one, or is torn or damaged (replication/snapshot.py)."""


class WalError(JobcachedError):
    """The write-ahead log cannot do what was asked (base of the WAL errors below)."""


class WalCorruptError(WalError):
    """A WAL record before the tail is damaged; start refuses unless run with `--repair`."""

    def __init__(self, file: str, offset: int, reason: str) -> None:
        super().__init__(f"{file}: corrupt WAL at byte offset {offset}: {reason}")
        self.file = file
        self.offset = offset
        self.reason = reason


class WalVersionError(WalError):
    """A WAL segment was written by a format version this build cannot read; never repaired."""


class WalWriteError(WalError):
    """A WAL write or fsync failed; every later write fails too until `reset_failure()`."""
