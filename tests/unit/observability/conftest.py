"""Fixtures for observability unit tests: a server state with a job engine, no sockets."""

from __future__ import annotations

import random

import pytest

from jobcached.clock import ManualClock
from jobcached.commands.registry import load_all
from jobcached.config import Config
from jobcached.jobs.engine import JobEngine
from jobcached.server.session import Session
from jobcached.server.state import ServerState

load_all()


class NullConnection:
    """A Session's connection that goes nowhere."""

    def close_after_reply(self) -> None: ...

    def abort(self) -> None: ...

    def query_buffer_bytes(self) -> int:
        return 0

    def output_buffer_bytes(self) -> int:
        return 0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def state(clock: ManualClock) -> ServerState:
    """A ServerState with a job engine (no WAL) on a manual clock."""
    state = ServerState(Config(), clock)
    state.jobs = JobEngine(clock, rng=random.Random(7))
    return state


@pytest.fixture
def session(state: ServerState) -> Session:
    return Session(state, NullConnection(), "127.0.0.1:5555", "127.0.0.1:7380", True)
