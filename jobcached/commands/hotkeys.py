"""HOTKEYS GET / RESET: the hottest keys by sampled lookups (Valkey's command shape).

The sampling and the Space-Saving summary live in `cache/hotkeys.py`; `hotkey-top-k` turns
them on (0, the default, turns them off, as Valkey's). Unlike Valkey, which reports a frozen,
completed window, this reports the live summary since the last HOTKEYS RESET (or since the
sampling was turned on), with the rate averaged over that time.
"""

from __future__ import annotations

from typing import Any

from jobcached.commands.args import Args, to_count
from jobcached.commands.registry import container, subcommand
from jobcached.errors import CommandError, SyntaxErr
from jobcached.net.replies import OK
from jobcached.server.session import Session

container("HOTKEYS", group="server", summary="Report the most accessed keys.")


def _tracker(s: Session) -> Any:
    hot = s.server.hot_keys
    if hot is None:
        raise CommandError("hot key detection is disabled (CONFIG SET hotkey-top-k <n>)")
    return hot


@subcommand("HOTKEYS", "GET", arity=-2)
def hotkeys_get(s: Session, argv: list[bytes]) -> Any:
    """HOTKEYS GET [COUNT count]

    The hottest keys, hottest first: at most COUNT (default `hotkey-top-k`) of them, estimated
    from a sample of about one key lookup in 16 since the last HOTKEYS RESET.

    Reply: array of maps: key, db, qps (estimated lookups per second, an integer).
    Errors: `hot key detection is disabled ...` while `hotkey-top-k` is 0; `syntax error`.
    """
    hot = _tracker(s)
    count = None
    args = Args(argv, 2)
    while args:
        if args.next_upper() != b"COUNT":
            raise SyntaxErr()
        count = to_count(args.next())
    return [{b"key": key, b"db": db, b"qps": round(qps)} for key, db, qps in hot.top(count)]


@subcommand("HOTKEYS", "RESET", arity=2)
def hotkeys_reset(s: Session, argv: list[bytes]) -> Any:
    """HOTKEYS RESET

    Forget the hot-key summary and start sampling afresh.

    Reply: `OK`.
    """
    _tracker(s).reset()
    return OK
