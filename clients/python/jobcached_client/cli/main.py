"""`jobcached-cli`: redis-cli for jobcached, in Python.

    jobcached-cli SET k v               one command, its reply, exit (1 if it was an error)
    jobcached-cli                       an interactive prompt (history, completion)
    jobcached-cli < commands.txt        one command per line from stdin
    jobcached-cli --stat                a line of server and queue figures every second
    jobcached-cli help JOB.PUSH         a command's syntax and summary (from COMMAND DOCS)

Replies look as redis-cli prints them: on a terminal `(integer) 1`, `(nil)`, `1) "a"`; raw
values when stdout is a pipe (`--no-raw` / `--raw` choose), or JSON with `--json`.
"""

from __future__ import annotations

import os
import sys

import click

from jobcached_client.cli.format import SplitError, render, split_args
from jobcached_client.cli.helptext import command_help
from jobcached_client.cli.resp import Connection, Reply
from jobcached_client.cli.target import Target
from jobcached_client.urls import DEFAULT_PORT


def encode_args(words: tuple[str, ...] | list[str]) -> list[bytes]:
    return [os.fsencode(word) for word in words]


def run_command(conn: Connection, args: list[bytes], mode: str) -> Reply:
    reply = conn.call(*args)
    sys.stdout.write(render(reply, args, mode))
    sys.stdout.flush()
    return reply


def run_stdin(conn: Connection, mode: str) -> int:
    """Each line of stdin is a command (as `redis-cli < file`)."""
    status = 0
    for line in sys.stdin:
        try:
            args = split_args(line)
        except SplitError:
            click.echo("Invalid argument(s)", err=True)
            status = 1
            continue
        if args and run_command(conn, args, mode).is_error:
            status = 1
    return status


CONTEXT = {"help_option_names": ["--help"], "ignore_unknown_options": True,
           "allow_interspersed_args": False}


@click.command(context_settings=CONTEXT)
@click.option("-h", "host", default="127.0.0.1", show_default=True, help="Server host.")
@click.option("-p", "port", type=int, default=DEFAULT_PORT, show_default=True,
              help="Server port.")
@click.option("-s", "socket_path", help="Server unix socket (overrides -h and -p).")
@click.option("-a", "password", help="Password (AUTH); also $JOBCACHEDCLI_AUTH.")
@click.option("--user", help="User name for AUTH.")
@click.option("-u", "url", help="Server URL: jobcached://[:password@]host:port, "
                                "jobcached+unix:///path.")
@click.option("-3", "--resp3", is_flag=True, help="Speak RESP3 (HELLO 3).")
@click.option("--raw", "output", flag_value="raw", help="Raw replies even on a terminal.")
@click.option("--no-raw", "output", flag_value="tty",
              help="Formatted replies even when stdout is not a terminal.")
@click.option("--json", "output", flag_value="json", help="Replies as JSON.")
@click.option("--stat", is_flag=True, help="A live line of server and queue figures.")
@click.option("-i", "interval", type=float, default=1.0, show_default=True,
              help="Seconds between --stat lines.")
@click.option("--no-auth-warning", is_flag=True, help="No warning about -a on a command line.")
@click.version_option(package_name="jobcached-client", message="jobcached-cli %(version)s")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def main(host: str, port: int, socket_path: str | None, password: str | None,
         user: str | None, url: str | None, resp3: bool, output: str | None, stat: bool,
         interval: float, no_auth_warning: bool, command: tuple[str, ...]) -> None:
    """Send COMMAND to a jobcached server, or open a prompt when there is none."""
    target = Target(host, port, socket_path, user, password, resp3)
    if url:
        target.apply_url(url)
    if target.password is None:
        target.password = os.environ.get("JOBCACHEDCLI_AUTH")
    elif password and not no_auth_warning:
        click.echo("Warning: Using a password with '-a' or '-u' option on the command line "
                   "interface may not be safe.", err=True)
    mode = output or ("tty" if sys.stdout.isatty() else "raw")
    try:
        conn = target.connect()
    except OSError as exc:
        if command or stat or not sys.stdin.isatty():
            raise click.ClickException(f"Could not connect to jobcached at {target.address}: "
                                       f"{exc.strerror or exc}") from None
        conn = Connection(target.host, target.port, target.path)  # the prompt retries
    try:
        if stat:
            from jobcached_client.cli.stat import run_stat

            run_stat(conn, interval)
        elif command and command[0].lower() == "help":  # as redis-cli: not sent as is
            text = command_help(conn, list(command[1:]))
            click.echo(text if text is not None else f"no help for '{' '.join(command[1:])}'")
            sys.exit(0 if text is not None else 1)
        elif command:
            sys.exit(1 if run_command(conn, encode_args(command), mode).is_error else 0)
        elif not sys.stdin.isatty():
            sys.exit(run_stdin(conn, mode))
        else:
            from jobcached_client.cli.repl import Repl

            Repl(target, conn, mode).run()
    except KeyboardInterrupt:
        pass
    except (OSError, ConnectionError) as exc:
        raise click.ClickException(f"{exc}") from None
    finally:
        conn.close()
