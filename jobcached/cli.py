"""Command line: `jobcached serve`, `jobcached version`.

Every config key is a `serve` flag of the same name (`--proto-max-bulk-len 100mb`); a flag left
out falls back to JOBCACHED_<NAME>, then the config file, then the default (see config.py).
A bad configuration prints one line on stderr and exits with code 2.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from jobcached import __version__
from jobcached.config import Config
from jobcached.errors import ConfigError, WalError

#: The exit code for a configuration the server refuses to start with.
EXIT_BAD_CONFIG = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """jobcached: a Redis-compatible cache and a durable job server in one process."""


def _config_options(func: Any) -> Any:
    """Add one `--name VALUE` option per config key, each with the key's help text."""
    sample = Config()
    for name in reversed(Config.names()):
        default = sample.render(name)
        func = click.option(f"--{name}", name.replace("-", "_"), default=None, metavar="VALUE",
                            help=f"{sample.help(name)} [default: {default!r}]")(func)
    return func


@main.command()
@click.option("--config", "config_file", default=None, metavar="FILE",
              help="A file of 'name value' lines (redis.conf style).")
@click.option("--repair", is_flag=True, default=False,
              help="Start even if the WAL is corrupt before its tail: cut it at the damage.")
@_config_options
def serve(config_file: str | None, repair: bool, **flags: str | None) -> None:
    """Run the server in the foreground."""
    from jobcached.app import run
    from jobcached.config import load_config
    from jobcached.observability.logs import setup_logging

    given = {name.replace("_", "-"): value for name, value in flags.items() if value is not None}
    config_file = config_file or os.environ.get("JOBCACHED_CONFIG")
    try:
        config = load_config(given, os.environ, config_file)
    except ConfigError as exc:
        click.echo(f"jobcached: configuration error: {exc}", err=True)
        sys.exit(EXIT_BAD_CONFIG)
    setup_logging(config.loglevel, config.log_format)
    try:
        code = run(config, repair=repair)
    except (OSError, WalError) as exc:
        click.echo(f"jobcached: cannot start: {exc}", err=True)
        sys.exit(1)
    sys.exit(code)


@main.command()
def version() -> None:
    """Print the version."""
    click.echo(f"jobcached {__version__}")
