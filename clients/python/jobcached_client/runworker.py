"""`jobcached-worker module:worker`: run a Worker defined in an application module.

    jobcached-worker myapp.tasks:worker --concurrency 20

The module is imported with the current directory on `sys.path` (as uvicorn and celery do),
and `worker` must name a `Worker` in it. The process runs until SIGTERM or SIGINT, then shuts
down gracefully (see `worker.py`); a second signal ends the grace period at once.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from jobcached_client.worker import Worker


def load_worker(target: str) -> Worker:
    """The Worker named by "module:attribute" (attribute may be dotted)."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise click.BadParameter(f"expected module:attribute, got {target!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name}: {exc}") from exc
    for name in attribute.split("."):
        try:
            found = getattr(found, name)
        except AttributeError:
            raise click.BadParameter(f"{module_name} has no attribute {attribute}") from None
    if not isinstance(found, Worker):
        raise click.BadParameter(f"{target} is a {type(found).__name__}, not a Worker")
    return found


@click.command(context_settings={"help_option_names": ["--help"]})
@click.argument("target")
@click.option("-c", "--concurrency", type=click.IntRange(min=1), help="Jobs run at once.")
@click.option("-q", "--queue", "queues", multiple=True,
              help="Queue to fetch from (repeatable); default: the worker's own list.")
@click.option("--grace", type=float, help="Seconds running jobs get to finish at shutdown.")
@click.option("--name", help="Worker id the server records on the jobs it runs.")
@click.option("--loglevel", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def main(target: str, concurrency: int | None, queues: tuple[str, ...], grace: float | None,
         name: str | None, loglevel: str) -> None:
    """Run the Worker TARGET (module:attribute) until SIGTERM or SIGINT."""
    logging.basicConfig(level=loglevel.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker = load_worker(target)
    if concurrency is not None:
        worker.concurrency = concurrency
    if queues:
        worker.queues = list(queues)
    if grace is not None:
        worker.grace = grace
    if name is not None:
        worker.name = name
    worker.run()
    if worker.threads_left_running:
        # A sync handler is still running after its job was handed back at the end of the
        # grace period; Python cannot stop a thread, so leave without waiting for it.
        logging.getLogger("jobcached_client.worker").warning(
            "leaving %d handler threads that are still running", worker.threads_left_running)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
