"""Command line: `jobcached serve`, `jobcached wal check`, `jobcached version` (and `--version`).

Every config key is a `serve` flag of the same name (`--proto-max-bulk-len 100mb`); a flag left
out falls back to JOBCACHED_<NAME>, then the config file, then the default (see config.py).
A bad configuration prints one line on stderr and exits with code 2; a start the machine
refuses (data dir locked or not a directory, a port taken, an address not of this host, a
damaged WAL) prints one line and exits with code 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from jobcached import __version__
from jobcached.config import Config
from jobcached.errors import ConfigError, StartupError, WalError

#: The exit code for a configuration the server refuses to start with.
EXIT_BAD_CONFIG = 2


#: What `--version` and `version` print.
VERSION_MESSAGE = f"jobcached {__version__}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, message=VERSION_MESSAGE)
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
@click.version_option(__version__, message=VERSION_MESSAGE)
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
    except (OSError, StartupError, WalError) as exc:
        click.echo(f"jobcached: cannot start: {exc}", err=True)
        sys.exit(1)
    sys.exit(code)


@main.group()
def wal() -> None:
    """Inspect the job write-ahead log."""


@wal.command("check")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
def wal_check(directory: str) -> None:
    """Read the WAL of a data dir (DIR or DIR/wal) without changing it and print a summary.

    Exits 0 when the log is clean or has only a torn tail (which the server truncates at
    start), 1 when it is damaged before its tail (the server refuses to start without --repair)
    or when DIRECTORY holds no WAL at all.
    """
    from jobcached.persistence.walcheck import summarize

    if (Path(directory) / "wal").is_dir():  # the data dir itself, as `serve --dir` names it
        directory = str(Path(directory) / "wal")
    report = summarize(directory)
    if not report["segments"] and not report["corruption"]:
        click.echo(f"no WAL in {directory}: no wal-*.log or wal-*.base file here (give the "
                   f"data dir, as `serve --dir`, or its wal folder)", err=True)
        sys.exit(1)
    click.echo(f"WAL {report['path']} (format version {report['version']})")
    click.echo(f"  segments: {len(report['segments'])}, records: {report['records']} "
               f"(+{report['base_records']} in the base), bytes: {report['bytes']}")
    if report["records"]:
        click.echo(f"  sequence numbers: {report['first_seq']}..{report['last_seq']}")
    for segment in report["segments"]:
        what = (f"the state before record {segment['first_seq']}, "
                if segment["base"] else "")
        click.echo(f"  {segment['file']}: {what}{segment['records']} records, "
                   f"{segment['bytes']} bytes")
    for damage in report["corruption"]:
        kind = "torn tail (truncated at start)" if damage["torn_tail"] else "CORRUPT"
        click.echo(f"  {kind}: {damage['file']} at offset {damage['offset']}: "
                   f"{damage['reason']}")
    for name in report["leftover_files"]:
        click.echo(f"  leftover from an interrupted compaction: {name}")
    click.echo("  status: " + ("ok" if report["ok"] else "damaged: start with --repair to cut"))
    sys.exit(0 if report["ok"] else 1)


@main.command()
def version() -> None:
    """Print the version."""
    click.echo(VERSION_MESSAGE)
