"""MONITOR's argument quoting and redaction (commands/monitor.py), against sdscatrepr's rules."""

from __future__ import annotations

from jobcached.commands.monitor import quote, redacted
from jobcached.commands.registry import COMMANDS, load_all

load_all()


def test_quote_escapes_like_sdscatrepr() -> None:
    assert quote(b"plain") == b'"plain"'
    assert quote(b"") == b'""'
    assert quote(b'a"b\\c') == b'"a\\"b\\\\c"'
    assert quote(b"\n\r\t\x07\x08") == b'"\\n\\r\\t\\a\\b"'
    assert quote(b"\x00\x01\x7f\xff \x1b") == b'"\\x00\\x01\\x7f\\xff \\x1b"'
    assert quote("é".encode()) == b'"\\xc3\\xa9"'


def test_credentials_are_redacted() -> None:
    auth, hello = COMMANDS[b"AUTH"], COMMANDS[b"HELLO"]
    assert redacted(auth, [b"AUTH", b"pw"]) == [b"AUTH", b"(redacted)"]
    assert redacted(auth, [b"AUTH", b"user", b"pw"]) == [b"AUTH", b"(redacted)", b"(redacted)"]
    assert redacted(hello, [b"HELLO", b"3", b"AUTH", b"u", b"p", b"SETNAME", b"n"]) == [
        b"HELLO", b"3", b"AUTH", b"(redacted)", b"(redacted)", b"SETNAME", b"n"]
    assert redacted(hello, [b"HELLO", b"3"]) == [b"HELLO", b"3"]
