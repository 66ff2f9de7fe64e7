"""`python -m jobcached` is `jobcached` (see cli.py)."""

from jobcached.cli import main

main()
