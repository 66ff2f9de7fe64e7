"""jobcached: a Redis-compatible cache and a durable job server in one process."""

__version__ = "0.1.0"
