"""Synchronous replication of job writes: the `REPLICAS n [TIMEOUT ms]` option of JOB.PUSH,
JOB.ACK and JOB.FAIL (Disque's ADDJOB REPLICATE, and a per-command WAIT).

Why per command and not just WAIT: a producer wants to know that *its* job survives the loss
of this machine before it forgets the job, without a second round trip and without waiting
for everybody else's writes (WAIT's offset is the whole stream's; here it is the end of this
command's effects, which is the same number when the command runs, and no later).

How it runs, in the order a client sees it:

1. Before the command changes anything (`check`): inside MULTI/EXEC or a script there is no
   waiting (they cannot be held halfway), so the option is refused there; and when fewer
   followers are attached than `n`, the reply is `-NOREPL Not enough connected replicas...`
   at once and nothing changes, as Disque refuses an ADDJOB it cannot replicate. A follower
   still loading its full sync counts as attached: it acknowledges once it is online.
2. The command runs; its records are in the replication stream (server/effects.py).
3. `hold`: the reply waits for two things, the WAL durability the command has anyway
   (commands/durable.py) and `n` followers acknowledging (`REPLCONF ACK`) an offset at or
   past the end of the stream now. The leader asks them for an ACK at the end of this loop
   turn (`REPLCONF GETACK *`, server/leader.py), so on a healthy link this is one round trip.
   If TIMEOUT (default `DEFAULT_TIMEOUT_MS`) runs out first, the reply is `-NOREPL Timeout
   reached before replicating to the requested number of replicas`: the change is *kept*
   (the job exists, the ack counts); it may still reach the followers later, or be lost with
   this machine if none has it. The client decides (retry with a KEY, or accept).

The reply does not block the connection: pipelined commands after it still run, and their
replies queue behind it in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobcached.commands.args import Args, to_int
from jobcached.commands.blocking import may_block
from jobcached.errors import CommandError
from jobcached.net.replies import Deferred, ErrorReply

if TYPE_CHECKING:
    from jobcached.server.session import Session

#: TIMEOUT when REPLICAS is given without it (ms). Followers on a healthy link answer within a
#: round trip of the GETACK, so a second means trouble; and it stays well under clients'
#: usual 5 s socket timeout, so the -NOREPL arrives before the client gives up reading.
DEFAULT_TIMEOUT_MS = 1000
#: The reply when the acks did not come in time (the change is kept).
NOREPL_TIMEOUT = "NOREPL Timeout reached before replicating to the requested number of replicas"
#: The error when fewer followers are attached than asked for (nothing changed).
NOREPL_UNREACHABLE = "Not enough connected replicas for the requested replication level"


@dataclass(slots=True)
class Replicas:
    """The parsed option: how many followers must acknowledge, and for how long to wait."""

    count: int
    timeout_ms: int = DEFAULT_TIMEOUT_MS


def parse(args: Args) -> Replicas:
    """`n [TIMEOUT ms]` after the REPLICAS keyword. A TIMEOUT right after REPLICAS n belongs
    to it (as LIMIT belongs to XADD's MAXLEN); JOB.PUSH's own TIMEOUT (the lease) is given
    elsewhere in the options."""
    count = to_int(args.next())
    if count < 0:
        raise CommandError("REPLICAS must not be negative")
    wanted = Replicas(count)
    if args and args.argv[args.pos].upper() == b"TIMEOUT":
        args.next()
        wanted.timeout_ms = to_int(args.next())
        if wanted.timeout_ms <= 0:
            raise CommandError("REPLICAS TIMEOUT must be positive")
    return wanted


def check(s: Session, wanted: Replicas | None) -> None:
    """Refuse, before anything changes, a wait that cannot happen (see the module docstring)."""
    if wanted is None or not wanted.count:
        return
    if not may_block(s):
        raise CommandError("REPLICAS cannot wait inside MULTI/EXEC or a script (use WAIT "
                           "after EXEC)")
    if s.server.leader.attached() < wanted.count:
        raise CommandError(NOREPL_UNREACHABLE, code="NOREPL")


def hold(s: Session, value: Any, wanted: Replicas | None) -> Any:
    """The command's reply `value` (or the Deferred already holding it for the WAL), released
    once `wanted.count` followers acknowledged the stream up to now; NOREPL on timeout."""
    server = s.server
    held = value if type(value) is Deferred else server.effects.durable(value)
    if wanted is None or not wanted.count:
        return held
    leader = server.leader
    offset = server.backlog.offset
    if leader.acked(offset) >= wanted.count:
        return held
    count = wanted.count
    acks = leader.wait_for_acks(offset, count, wanted.timeout_ms, lambda n: n >= count,
                                blocking=False)
    reply = Deferred()

    def acknowledged(done: Deferred) -> None:
        failed = None if done.value else ErrorReply(NOREPL_TIMEOUT)
        if type(held) is Deferred:
            held.add_callback(lambda durable: reply.resolve(
                durable.value if failed is None else failed))
        else:
            reply.resolve(held if failed is None else failed)

    acks.add_callback(acknowledged)
    reply.on_cancel = acks.cancel  # the client left: stop waiting for its acks
    return reply
