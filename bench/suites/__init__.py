"""Built-in suites: importing this package registers them, in the order RESULTS.md lists them.

One module per family: `cache.py` (redis-benchmark against redis-server). Later: memory, jobs.
"""

from bench.suites import cache  # noqa: F401  (registers on import)
