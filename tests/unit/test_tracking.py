"""The tracking table without sockets: who is told what, the bound, and a client's departure."""

from __future__ import annotations

from typing import Any

from jobcached.net.replies import Push
from jobcached.server.tracking import Tracking


class Conn:
    """Records pushes: `now` as written at once, `later` as queued after the reply."""

    def __init__(self) -> None:
        self.now: list[list[Any]] = []
        self.later: list[list[Any]] = []

    def push(self, value: Push) -> None:
        self.now.append(value.items)

    def push_after_reply(self, value: Push) -> None:
        self.later.append(value.items)


class Client:
    """The part of a Session the table reads."""

    def __init__(self, clients: dict[int, Any], client_id: int, resp3: bool = True,
                 subscribed: bool = False) -> None:
        self.id = client_id
        self.resp3 = resp3
        self.subscribed = subscribed
        self.closing = False
        self.tracking = None
        self.conn = Conn()
        clients[client_id] = self


def setup(n: int = 2) -> tuple[Tracking, list[Any]]:
    clients: dict[int, Any] = {}
    tracking = Tracking(clients)
    return tracking, [Client(clients, i + 1) for i in range(n)]


def on(tracking: Tracking, client: Any, **options: Any) -> None:
    settings = {"redirect": 0, "bcast": False, "optin": False, "optout": False,
                "noloop": False, "prefixes": [], **options}
    tracking.enable(client, **settings)


def test_invalidation_once_then_forgotten() -> None:
    tracking, (a, b) = setup()
    on(tracking, a)
    tracking.remember(a, [b"k", b"j"], a)
    tracking.invalidate(b"k", b, b)
    tracking.invalidate(b"k", b, b)
    assert a.conn.now == [[b"invalidate", [b"k"]]]
    assert tracking.info() == {"tracking_total_keys": 1, "tracking_total_items": 1,
                               "tracking_total_prefixes": 0}


def test_own_write_goes_after_the_reply_and_noloop_skips_it() -> None:
    tracking, (a, b) = setup()
    on(tracking, a)
    on(tracking, b, noloop=True)
    tracking.remember(a, [b"k"], a)
    tracking.remember(b, [b"k"], b)
    tracking.invalidate(b"k", a, a)
    assert a.conn.later == [[b"invalidate", [b"k"]]] and not a.conn.now
    assert b.conn.now == [[b"invalidate", [b"k"]]]
    tracking.remember(b, [b"k"], b)
    tracking.invalidate(b"k", b, b)
    assert len(b.conn.now) == 1


def test_bound_drops_oldest_and_tells_their_clients() -> None:
    tracking, (a, _) = setup()
    tracking.max_keys = 3
    on(tracking, a)
    tracking.remember(a, [b"k%d" % i for i in range(5)], a)
    assert list(tracking.table) == [b"k2", b"k3", b"k4"]
    assert a.conn.later == [[b"invalidate", [b"k0"]], [b"invalidate", [b"k1"]]]


def test_disconnect_removes_the_client_from_the_table() -> None:
    tracking, (a, b) = setup()
    on(tracking, a)
    on(tracking, b)
    tracking.remember(a, [b"k", b"j"], a)
    tracking.remember(b, [b"k"], b)
    tracking.forget(a)
    assert tracking.table == {b"k": {b.id}} and tracking.total_items == 1
    assert tracking.tracking_clients == 1


def test_redirect_to_resp2_subscriber_and_broken_redirect() -> None:
    tracking, (a, b) = setup()
    b.resp3, b.subscribed = False, True
    on(tracking, a, redirect=b.id)
    tracking.remember(a, [b"k"], a)
    tracking.invalidate(b"k", None, None)
    assert b.conn.now == [[b"message", b"__redis__:invalidate", [b"k"]]]
    del tracking.clients[b.id]
    tracking.remember(a, [b"k"], a)
    tracking.invalidate(b"k", None, None)
    assert a.conn.now == [[b"tracking-redir-broken", b.id]]
    assert a.tracking is not None and "broken_redirect" in str(a.tracking.flags())


def test_bcast_collects_per_prefix_until_broadcast() -> None:
    tracking, (a, b) = setup()
    tracking.call_soon = lambda callback: None  # the loop runs it later: we call it here
    on(tracking, a, bcast=True, prefixes=[b"u:", b"j:"])
    on(tracking, b, bcast=True, noloop=True)
    for key, by in ((b"u:2", b), (b"u:1", a), (b"j:1", None), (b"x", b)):
        tracking.invalidate(key, by, by)
    assert not a.conn.now
    tracking.broadcast()
    assert a.conn.now == [[b"invalidate", [b"j:1"]], [b"invalidate", [b"u:1", b"u:2"]]]
    assert b.conn.now == [[b"invalidate", [b"j:1", b"u:1"]]]


def test_optin_remembers_only_after_caching_yes_and_prefixes_must_not_overlap() -> None:
    tracking, (a, _) = setup()
    on(tracking, a, optin=True)
    tracking.remember(a, [b"k"], a)
    assert not tracking.table
    assert a.tracking is not None
    a.tracking.caching = True
    tracking.remember(a, [b"k"], a)
    assert b"k" in tracking.table
    error = Tracking.prefix_collision(None, [b"ab", b"a"])
    assert error is not None and "'ab' overlaps with another provided prefix 'a'" in error
