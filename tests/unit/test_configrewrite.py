"""CONFIG REWRITE's text transformation (configrewrite.rewrite), without a server."""

from __future__ import annotations

from jobcached.config import Config
from jobcached.server.configrewrite import SIGNATURE, quote, rewrite


def test_keeps_comments_and_unknown_lines_and_drops_repeats() -> None:
    config = Config()
    config.set("maxmemory", "1mb")
    config.set("hz", "15")
    config.set("slave-read-only", "no")
    old = ("# my cache\ninclude /etc/other.conf\nmaxmemory 10mb  # inline\n\nhz 20\nhz 30\n"
           "replica-read-only yes\n" + SIGNATURE + "\nslowlog-max-len 128\n")
    new = rewrite(old, config)
    assert new == ("# my cache\ninclude /etc/other.conf\nmaxmemory 1048576\n\nhz 15\n"
                   "replica-read-only no\n" + SIGNATURE + "\nslowlog-max-len 128\n")


def test_appends_changed_parameters_once_after_the_signature() -> None:
    config = Config()
    config.set("save", "900 1")
    config.set("lua-time-limit", "700")
    new = rewrite("port 7000\n", config)
    lines = new.splitlines()
    assert lines[0] == f"port {config.port}"
    assert lines[1] == SIGNATURE
    assert 'save "900 1"' in lines and "busy-reply-threshold 700" in lines
    assert not any(line.startswith("lua-time-limit") for line in lines)
    assert rewrite(new, config) == new


def test_quote_round_trips_through_the_reader() -> None:
    assert quote("") == '""' and quote("a b") == '"a b"' and quote("64mb") == "64mb"
    assert quote('say "hi"') == '"say \\"hi\\""'
