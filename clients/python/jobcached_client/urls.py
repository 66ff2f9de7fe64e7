"""Connection URLs: `jobcached://[:password@]host[:port][/db]`, `jobcached+unix:///path`,
`unix:///path`, and over TLS `jobcacheds://host[:port]` (or `jobcached+tls://`).

redis-py understands `redis://`, `rediss://` and `unix://`; this maps jobcached's own schemes
onto them (with jobcached's default port) and leaves every other URL to redis-py as it is.
TLS URLs become redis-py's `rediss://`: pass its `ssl_ca_certs=`, `ssl_certfile=` and
`ssl_keyfile=` (a client certificate, when the server asks for one) to `from_url`.
Behind Redis Sentinel, `jobcached+sentinel://[[user]:password@]host[:port][,host[:port]...]
/service[/db]` names the sentinels (port 26379 unless given) and the service they watch
(`sentinel monitor <service> ...`); the password is the servers', a sentinel's goes in
`?sentinel_password=`. `sentinel_target` reads such a URL, and sentinel.py builds the pool
that asks the sentinels for the leader on each new connection.
A password for a unix socket goes before the path (`jobcached+unix://:pw@/run/jc.sock`) or in
the query (`jobcached+unix:///run/jc.sock?password=pw`). The path of a TCP URL, or `?db=N`
for a socket, is the cache database redis-py SELECTs on connect; jobs ignore it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

#: jobcached's port when a URL names none (Redis' 6379 plus one, to run beside it).
DEFAULT_PORT = 7380
#: Clients speak RESP3 unless told otherwise: maps arrive as dicts, not flat arrays.
DEFAULT_PROTOCOL = 3

#: A sentinel's port when a sentinel URL names none (Redis Sentinel's own default).
SENTINEL_PORT = 26379
SENTINEL_SCHEME = "jobcached+sentinel"

SCHEMES = {"jobcached": "redis", "jobcached+unix": "unix", "jobcached+tls": "rediss",
           "jobcacheds": "rediss"}


def redis_url(url: str) -> str:
    """The redis-py URL for a jobcached URL."""
    parts = urlsplit(url)
    scheme = SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        return url
    if scheme == "unix":  # keep the text as it is: urlunsplit would drop the "//"
        return scheme + url[len(parts.scheme):]
    userinfo, at, hostport = parts.netloc.rpartition("@")
    hostport = hostport or "localhost"
    if parts.port is None:
        hostport = f"{hostport}:{DEFAULT_PORT}"
    return urlunsplit((scheme, f"{userinfo}{at}{hostport}", parts.path, parts.query,
                       parts.fragment))


@dataclass(frozen=True)
class SentinelTarget:
    """What a `jobcached+sentinel://` URL names: where to ask, for which service, and how to
    log in to the leader the sentinels name."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def sentinel_target(url: str) -> SentinelTarget | None:
    """The parts of a `jobcached+sentinel://` URL; None for any other URL. ValueError says
    what is wrong with a malformed one."""
    parts = urlsplit(url)
    if parts.scheme.lower() != SENTINEL_SCHEME:
        return None
    userinfo, _, hosts = parts.netloc.rpartition("@")
    sentinels = tuple(_address(item, url) for item in hosts.split(",") if item)
    if not sentinels:
        raise ValueError(f"{url!r}: no sentinel address")
    names = [unquote(name) for name in parts.path.split("/") if name]
    if not names or len(names) > 2:
        raise ValueError(f"{url!r}: the path must be /service or /service/db")
    if len(names) == 2 and not names[1].isdigit():
        raise ValueError(f"{url!r}: the database must be a number, not {names[1]!r}")
    username, colon, password = userinfo.partition(":")
    query = parse_qs(parts.query)
    return SentinelTarget(
        sentinels, names[0], int(names[1]) if len(names) == 2 else 0,
        unquote(username) or None, unquote(password) if colon else None,
        query["sentinel_password"][-1] if "sentinel_password" in query else None)


def _address(item: str, url: str) -> tuple[str, int]:
    """`host`, `host:port` or `[ipv6]:port`."""
    host, port = item, ""
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
    elif ":" in item:
        host, _, port = item.rpartition(":")
    if port and not port.isdigit():
        raise ValueError(f"{url!r}: {port!r} is not a port")
    return host, int(port) if port else SENTINEL_PORT
