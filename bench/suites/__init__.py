"""Built-in suites: importing this package registers them, in the order RESULTS.md lists them.

One module per family: `cache.py` (redis-benchmark against redis-server), `bits.py` (bitmap and
HyperLogLog commands, custom redis-benchmark commands), `geosort.py` (GEOSEARCH and SORT over
large values, custom commands too), `streams.py` (XADD / XREADGROUP / XACK
per entry), `memory.py` (RSS holding the same keys), `metrics.py` (the cost of /metrics),
`scripting.py` (EVALSHA of a 3-command script, redis-py's Lock cycle),
`hotkeys.py` (the cost of hot-key sampling), `tls.py` (SET/GET over TLS against redis-server
over TLS),
`jobs.py` (jobcached as a job server, against beanstalkd; load generators in
`bench/jobload.py`), `jobmemory.py` (RSS holding the same queued jobs as beanstalkd),
`workers.py` (no-op jobs through jobcached's Worker, RQ and Celery), `replication.py` (a
leader with a follower against redis-server with a replica: lag, CPU per write, full sync;
load in `bench/replload.py`).
"""

from bench.suites import (  # noqa: F401  (register on import)
    bits,
    cache,
    geosort,
    hotkeys,
    jobmemory,
    jobs,
    memory,
    metrics,
    replication,
    scripting,
    streams,
    tls,
    workers,
)
