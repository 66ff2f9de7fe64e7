"""Side-by-side benchmarks of jobcached against the real thing (redis-server, beanstalkd, ...).

`python -m bench.run` starts each peer on a free port, drives it with the peer's own load tool
(redis-benchmark for the cache), measures throughput *and* the server process's CPU time per
request, writes `bench/results/<suite>.json` and regenerates `bench/RESULTS.md`.

Modules:
  suite.py        the Suite interface, result columns and the registry of suites
  context.py      starting/stopping servers on free ports; CPU and RSS of a pid from /proc
  redisbench.py   one redis-benchmark test at a time, with server CPU attributed to it
  report.py       machine facts, the JSON result files and RESULTS.md
  suites/         one module per family of suites (cache.py, ...)
  run.py          the command line
"""
