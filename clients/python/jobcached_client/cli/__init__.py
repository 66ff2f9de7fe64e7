"""`jobcached-cli`: a redis-cli for jobcached (see main.py)."""

from jobcached_client.cli.main import main

__all__ = ["main"]
