"""Batch commands: BATCH.NEW, BATCH.COMMIT, BATCH.GET (rules in jobs/batches.py)."""

from __future__ import annotations

from typing import Any

from jobcached.commands.args import Args
from jobcached.commands.jobs import check_size, engine_of, text
from jobcached.commands.keyspec import after_keyword
from jobcached.commands.registry import FAST, READONLY, WRITE, command
from jobcached.errors import SyntaxErr
from jobcached.jobs.batches import COMPLETE, SUCCESS
from jobcached.net.replies import OK
from jobcached.server.session import Session


@command("BATCH.NEW", arity=-1, flags=WRITE | FAST, group="batch",
         key_specs=(*after_keyword("ONSUCCESS", "RW", "insert"),
                    *after_keyword("ONCOMPLETE", "RW", "insert")), acl=("job-produce",),
         durable=True)
def batch_new(s: Session, argv: list[bytes]) -> Any:
    """BATCH.NEW [ONSUCCESS queue payload] [ONCOMPLETE queue payload]

    Open a batch: push its jobs with `JOB.PUSH ... BATCH id`, then BATCH.COMMIT it. Once it is
    committed and every member has ended, the ONCOMPLETE job is pushed; once every member has
    succeeded, the ONSUCCESS job. Each callback is pushed exactly once (also across restarts),
    with META `batch` (the batch id) and `callback` (success or complete).

    Reply: the batch id.

    Example: `BATCH.NEW ONSUCCESS reports "{\"report\": 7}"` → `"01J9ZB..."`
    """
    engine = engine_of(s)
    callbacks: dict[bytes, tuple[str, bytes]] = {}
    args = Args(argv)
    while args:
        option = args.next_upper()
        if option not in (b"ONSUCCESS", b"ONCOMPLETE") or option in callbacks:
            raise SyntaxErr()
        queue, payload = text(args.next()), args.next()
        check_size(s, payload, "callback payload")
        callbacks[option] = (queue, payload)
    batch_id = engine.batches.new(callbacks.get(b"ONSUCCESS"), callbacks.get(b"ONCOMPLETE"))
    return batch_id.encode()


@command("BATCH.COMMIT", arity=2, flags=WRITE | FAST, group="batch", acl=("job-produce",),
         durable=True)
def batch_commit(s: Session, argv: list[bytes]) -> Any:
    """BATCH.COMMIT id

    Close a batch to new members. Its callbacks can fire only from now on (at once, if all
    members have already ended). Committing twice is harmless.

    Reply: `OK`, once durable.
    Errors: `ERR no such batch`.

    Example: `BATCH.COMMIT 01J9ZB...` → `OK`
    """
    engine = engine_of(s)
    engine.batches.close(text(argv[1]))
    return OK


@command("BATCH.GET", arity=2, flags=READONLY | FAST, group="batch", acl=("job-produce",))
def batch_get(s: Session, argv: list[bytes]) -> Any:
    """BATCH.GET id

    A batch's progress. Batches are kept until `job-archive-retention` after they ended.

    Reply: a map with id, created (unix ms), committed (0 or 1), total (members), one count
    per job state (pending, queued, running, retrying, succeeded, dead, canceled), and
    success_fired / complete_fired (unix ms the callback was pushed, 0 if not yet); nil for
    an unknown batch.

    Example: `BATCH.GET 01J9ZB...` → `... "succeeded" => (integer) 100 ... "success_fired" =>
    (integer) 1767225600123`
    """
    batch = engine_of(s).batches.get(text(argv[1]))
    if batch is None:
        return None
    counts = batch.state_counts()
    reply: dict[bytes, Any] = {b"id": batch.id.encode(), b"created": batch.created_ms,
                               b"committed": int(batch.committed),
                               b"total": sum(counts.values())}
    reply.update({state.value.encode(): n for state, n in counts.items()})
    reply[b"success_fired"] = batch.fired.get(SUCCESS, 0)
    reply[b"complete_fired"] = batch.fired.get(COMPLETE, 0)
    return reply
