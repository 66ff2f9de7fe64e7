"""jobcached: a Redis-compatible cache and a durable job server in one process."""

__version__ = "0.1.0"

#: The Redis version whose commands and replies we follow; clients that branch on the server
#: version (INFO redis_version, HELLO version) see this.
REDIS_COMPAT_VERSION = "7.0.0"
