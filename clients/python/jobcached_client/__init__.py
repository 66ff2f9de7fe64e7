"""jobcached-client: talk to jobcached from Python (built on redis-py).

- `Client` / `AsyncClient`: redis-py clients (every cache command works as in redis-py) with
  typed job commands in `client.jobs`, `client.queues`, `client.dlq`, `client.batches` and
  `client.cron`, and job state changes from `client.events(...)`;
- `Worker`: runs handlers for jobs, with heartbeats, retries and graceful shutdown;
- `jobcached-cli` and `jobcached-worker`: the command-line tools.

The names below are imported on first use, so that `jobcached-cli` starts without loading
redis-py and asyncio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobcached_client.aio import AsyncClient
    from jobcached_client.client import Client
    from jobcached_client.events import AsyncJobEvents, JobEvents
    from jobcached_client.handlers import JobContext
    from jobcached_client.model import (
        Batch,
        CronEntry,
        Job,
        JobError,
        JobEvent,
        LogPage,
        QueueStats,
        State,
    )
    from jobcached_client.serializers import JSONSerializer, Serializer
    from jobcached_client.worker import Worker

__version__ = "0.1.0"

_HOMES = {"AsyncClient": "aio", "Client": "client", "Job": "model", "JobError": "model",
          "QueueStats": "model", "State": "model", "LogPage": "model", "Batch": "model",
          "CronEntry": "model", "JobEvent": "model", "JobEvents": "events",
          "AsyncJobEvents": "events", "JSONSerializer": "serializers",
          "Serializer": "serializers", "JobContext": "handlers", "Worker": "worker"}

__all__ = ["AsyncClient", "AsyncJobEvents", "Batch", "Client", "CronEntry", "JSONSerializer",
           "Job", "JobContext", "JobError", "JobEvent", "JobEvents", "LogPage", "QueueStats",
           "Serializer", "State", "Worker"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'jobcached_client' has no attribute {name!r}")
    return getattr(importlib.import_module(f"jobcached_client.{home}"), name)
