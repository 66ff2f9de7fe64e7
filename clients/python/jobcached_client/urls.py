"""Connection URLs: `jobcached://[:password@]host[:port][/db]`, `jobcached+unix:///path`,
`unix:///path`, and over TLS `jobcacheds://host[:port]` (or `jobcached+tls://`).

redis-py understands `redis://`, `rediss://` and `unix://`; this maps jobcached's own schemes
onto them (with jobcached's default port) and leaves every other URL to redis-py as it is.
TLS URLs become redis-py's `rediss://`: pass its `ssl_ca_certs=`, `ssl_certfile=` and
`ssl_keyfile=` (a client certificate, when the server asks for one) to `from_url`.
A password for a unix socket goes before the path (`jobcached+unix://:pw@/run/jc.sock`) or in
the query (`jobcached+unix:///run/jc.sock?password=pw`). The path of a TCP URL, or `?db=N`
for a socket, is the cache database redis-py SELECTs on connect; jobs ignore it.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

#: jobcached's port when a URL names none (Redis' 6379 plus one, to run beside it).
DEFAULT_PORT = 7380
#: Clients speak RESP3 unless told otherwise: maps arrive as dicts, not flat arrays.
DEFAULT_PROTOCOL = 3

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
