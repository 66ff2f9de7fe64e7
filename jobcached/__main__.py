"""`python -m jobcached` is `jobcached` (see cli.py)."""

from jobcached.server.cli import main

main()
