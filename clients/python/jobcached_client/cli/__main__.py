"""`python -m jobcached_client.cli`: the same as `jobcached-cli`."""

from jobcached_client.cli.main import main

main()
