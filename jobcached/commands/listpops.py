"""LMPOP and BLMPOP: pops of several elements from the first non-empty of several lists.

Kept apart from lists.py (which is near its size limit) but built on the same pop
(cache/lists.py) and keyspace events (`lpop` / `rpop`, then `del` when a list empties) as LPOP
and RPOP. As in Redis 7.0 (t_list.c mpopGenericCommand), the keys are looked at in order and
each one's type is checked until the first non-empty list; the pop propagates as `LPOP key n` /
`RPOP key n` with the number actually popped. BLMPOP waits through blocking.py, like BLPOP.
"""

from __future__ import annotations

from typing import Any

from jobcached.cache.lists import pop
from jobcached.commands import blocking
from jobcached.commands.args import mpop_args, to_timeout_ms
from jobcached.commands.lists import LEFT, RIGHT, notify_popped
from jobcached.commands.registry import BLOCKING, WRITE, command
from jobcached.net.replies import NULL_ARRAY
from jobcached.server.session import Session


def _mpop_from(s: Session, key: bytes, side: bytes, count: int) -> Any:
    """Pop from `key` if it holds a non-empty list: [key, [elements]]; else EMPTY."""
    popped = pop(s.keyspace, key, side == LEFT, count)
    if not popped or not popped[0]:
        return blocking.EMPTY
    values, left = popped
    name = b"LPOP" if side == LEFT else b"RPOP"
    s.server.effects.cache([name, key, b"%d" % len(values)], (key,))
    notify_popped(s, key, left, side)
    return [key, values]


@command("LMPOP", arity=-4, flags=WRITE, group="list")
def lmpop(s: Session, argv: list[bytes]) -> Any:
    """LMPOP numkeys key [key ...] LEFT | RIGHT [COUNT count]

    Pop up to `count` (default 1) elements from the head (LEFT) or tail (RIGHT) of the first
    non-empty list among the keys.

    Reply: [key, [element, ...]], or a null array when every list is empty or missing.
    Errors: `numkeys should be greater than 0`; `count should be greater than 0`; `syntax
    error` (also when numkeys exceeds the keys given); `WRONGTYPE` (any key up to the first
    non-empty list).
    """
    keys, side, count = mpop_args(argv, 1, (LEFT, RIGHT))
    for key in keys:
        reply = _mpop_from(s, key, side, count)
        if reply is not blocking.EMPTY:
            return reply
    return NULL_ARRAY


@command("BLMPOP", arity=-5, flags=WRITE | BLOCKING, group="list")
def blmpop(s: Session, argv: list[bytes]) -> Any:
    """BLMPOP timeout numkeys key [key ...] LEFT | RIGHT [COUNT count]

    LMPOP; when every list is empty, wait until one gets an element or `timeout` seconds pass
    (a double; 0 waits forever). Clients waiting on the same key are served in the order they
    blocked. Inside MULTI it does not wait.

    Reply: as LMPOP; a null array on timeout.
    Errors: `timeout is not a float or out of range`; `timeout is negative`; as LMPOP.
    """
    timeout = to_timeout_ms(argv[1])
    keys, side, count = mpop_args(argv, 2, (LEFT, RIGHT))
    return blocking.pop_or_block(s, keys, timeout,
                                 lambda key: _mpop_from(s, key, side, count), NULL_ARRAY)
