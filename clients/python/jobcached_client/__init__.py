"""jobcached-client: talk to jobcached from Python (built on redis-py).

The cache side is redis-py itself: `redis.Redis(port=7380)` works unchanged. The typed job API,
the Worker runtime and `jobcached-cli` arrive with the clients issue.
"""

__version__ = "0.1.0"
