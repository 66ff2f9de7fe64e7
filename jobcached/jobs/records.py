"""The job log's record schema: every record kind declared once, with its version and fields.

Why a schema: the WAL outlives the build that wrote it. A record is decoded by the *next*
build, so its layout must be written down in one place, carry a version, and an old layout
must be turned into the current one by an explicit function, never by guessing from its
length. `KINDS` is that place: encode and decode are driven by it, and so are the job record
builder (`job_record`, what JOB.PUSH logs) and `dump_job` (`Job.to_record`).

On disk (msgpack, as before) every record is an array `[kind, version, *fields]` in the
declared field order. The version is written in every record rather than once per WAL file:
it costs one byte (a msgpack fixint) and one comparison per record, and it stays right where a
per-file version would not: records are appended to the segment an older build started (the
active segment is reopened after an upgrade), they travel without a file (replication, the
archive's blobs embed job layouts), and every kind moves on by itself.

In memory records keep the shape the engine applies: a dict `{"op": kind, field: value, ...}`,
except a new job's, which stays the array `["put", version, *JOB fields]` (puts are most of
any log, and replay hands the fields straight to `Job.from_record`).

Versions. Version 1 is the unversioned format of the first builds: maps with an "op" key, and
new jobs as `["put", *JOB fields]`. `decode_record` reads it through `upgrade_map_v1_to_v2` and
`upgrade_put_v1_to_v2`. Two layouts older than that, written only by development builds of
the first day and never by a release (the `{"op": "put", "job": [...]}` map and 25-field jobs
padded with defaults), are not read: they are refused like any unknown record. A record of a
version newer than this build's, or of an unknown kind, raises WalVersionError: the server
refuses to start rather than misread the log.

Changing a layout: bump the kind's version, and register `upgrade_<kind>_v<N>_to_v<N+1>` in
`UPGRADES`, which maps the old record array to the new one; keep a sample log of the old
version under tests/data/wal. The nested layouts are part of the kinds that carry them: JOB in
put and restore (and the archive's blobs, see jobs/archive.py), `Batch.to_record` in batch,
`CronEntry.to_record` in cron-set.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from types import NoneType
from typing import Any

import msgpack

from jobcached.errors import WalError, WalVersionError

#: A field without a default: every record must give it.
REQUIRED: Any = object()


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a record kind (or of the job layout). `dump` is the expression that reads
    it from a `job` (job layout only: `dump_job` is generated from it)."""

    name: str
    type: type | tuple[type, ...]
    default: Any = REQUIRED
    dump: str = ""


@dataclass(frozen=True, slots=True)
class Kind:
    """A record kind: its name (the `op`), current version and fields, in wire order."""

    name: str
    version: int
    fields: tuple[Field, ...]
    names: tuple[str, ...] = field(init=False)
    #: a record dict's field values, as a tuple in `names` order
    values: Callable[[dict[str, Any]], tuple[Any, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names = tuple(f.name for f in self.fields)
        object.__setattr__(self, "names", names)
        # itemgetter of several names returns their values as one tuple, in C
        getter = itemgetter(*names) if len(names) > 1 else (lambda r: (r[names[0]],))
        object.__setattr__(self, "values", getter)


#: The durable fields of a job, in record order (Job.to_record, Job.from_record).
JOB: tuple[Field, ...] = (
    Field("id", str, dump="job.id"),
    Field("queue", str, dump="job.queue"),
    Field("type", str, dump="job.type"),
    Field("payload", bytes, dump="job.payload"),
    Field("state", str, dump="job.state._value_"),  # `.value` is a slower Python property
    Field("priority", int, 0, "job.priority"),
    Field("attempt", int, 0, "job.attempt"),
    Field("retries", int, dump="job.retry.retries"),
    Field("backoff", (list, NoneType), None,
          "list(job.retry.backoff_ms) if job.retry.backoff_ms else None"),
    Field("timeout", int, dump="job.timeout_ms"),
    Field("run_at", int, dump="job.run_at_ms"),
    Field("created", int, dump="job.created_ms"),
    Field("enqueued", int, 0, "job.enqueued_ms"),
    Field("started", int, 0, "job.started_ms"),
    Field("finished", int, 0, "job.finished_ms"),
    Field("errors", list, [], "list(job.errors)"),
    Field("result", (bytes, NoneType), None, "job.result"),
    Field("key", (str, NoneType), None, "job.key"),
    Field("key_expires", int, 0, "job.key_expires_ms"),
    Field("meta", dict, {}, "dict(job.meta)"),
    Field("token", str, "", "job.token"),
    Field("deadline", int, 0, "job.deadline_ms"),
    Field("worker", str, "", "job.worker"),
    Field("reason", str, "", "job.reason"),
    Field("retry_base", int, 0, "job.retry_base"),
    Field("parents", list, [], "list(job.parents)"),
    Field("batch", str, "", "job.batch"),
    Field("expire", int, 0, "job.expire_ms"),
    Field("logs", list, [], "list(job.logs)"),
    Field("log_base", int, 0, "job.log_base"),
)
JOB_NAMES = tuple(f.name for f in JOB)

PUT = "put"


def _kinds(*kinds: Kind) -> dict[str, Kind]:
    return {kind.name: kind for kind in kinds}


def _f(name: str, type_: type | tuple[type, ...]) -> Field:
    return Field(name, type_)


_ID, _NOW = _f("id", str), _f("now", int)
_IDS = _f("ids", list)

#: Every record kind the job engine logs. The put kind's fields are the job's (JOB).
KINDS: dict[str, Kind] = _kinds(
    Kind(PUT, 2, JOB),
    Kind("lease", 2, (_ID, _NOW, _f("worker", str), _f("token", str), _f("deadline", int))),
    Kind("ack", 2, (_ID, _NOW, _f("result", (bytes, NoneType)))),
    Kind("due", 2, (_ID, _NOW)),
    Kind("beat", 2, (_ID, _NOW, _f("deadline", int))),
    Kind("fail", 2, (_ID, _NOW, _f("error", dict), _f("retry_at", (int, NoneType)))),
    Kind("cancel", 2, (_ID, _NOW, _f("reason", str))),
    Kind("retry", 2, (_ID, _NOW)),
    Kind("log", 2, (_ID, _f("lines", list))),
    Kind("pause", 2, (_f("queue", str),)),
    Kind("resume", 2, (_f("queue", str),)),
    Kind("limit", 2, (_f("queue", str), _f("concurrency", int), _f("rate", int),
                      _f("per_ms", int))),
    # a queue's processed and failed counts, in a snapshot (they count records a snapshot drops)
    Kind("counters", 2, (_f("queue", str), _f("processed", int), _f("failed", int))),
    Kind("delete", 2, (_IDS,)),
    Kind("archive", 2, (_IDS,)),
    Kind("restore", 2, (_f("job", list),)),  # JOB's fields
    Kind("keys", 2, (_f("keys", list),)),  # [key, job id, expires ms, fingerprint] each
    Kind("batch", 2, (_f("batch", list),)),  # Batch.to_record()
    Kind("batch-new", 2, (_ID, _NOW, _f("success", (list, NoneType)),
                          _f("complete", (list, NoneType)))),
    Kind("batch-commit", 2, (_ID,)),
    Kind("batch-fired", 2, (_ID, _f("which", str), _NOW)),
    Kind("batch-drop", 2, (_IDS,)),
    Kind("cron-set", 2, (_f("entry", list),)),  # CronEntry.to_record()
    Kind("cron-del", 2, (_f("name", str),)),
    Kind("cron-pause", 2, (_f("name", str), _NOW)),
    Kind("cron-resume", 2, (_f("name", str), _NOW)),
    Kind("cron-fired", 2, (_f("name", str), _f("slot", int), _f("job", str))),
)
PUT_VERSION = KINDS[PUT].version


def put_record(job_fields: Sequence[Any]) -> list[Any]:
    """The record that adds (or replaces) a job: its kind and version, then JOB's fields."""
    return [PUT, PUT_VERSION, *job_fields]


# ---------------------------------------------------------------- encode and decode

_pack: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True).pack
#: msgpack's C function itself through `partial` (also C): no Python frame per record
_unpack_tuples: Callable[[bytes], Any] = functools.partial(msgpack.unpackb, use_list=False)


def _decoding(kind: Kind) -> tuple[int, int, tuple[str, ...] | None]:
    """(current version, record length, keys) for `decode_record`. The keys zip with the
    whole record, kind and version included: the version's key is the first field's, whose
    value the field itself then replaces, so one `dict(zip(...))` builds the record with no
    slicing (None for put, which stays an array)."""
    keys = None if kind.name == PUT else ("op", kind.names[0], *kind.names)
    return kind.version, len(kind.names) + 2, keys


_DECODING = {kind.name: _decoding(kind) for kind in KINDS.values()}


def _encoding(kind: Kind) -> tuple[tuple[str, int], Callable[[dict[str, Any]], tuple[Any, ...]]]:
    """((kind, version), the getter of a record's fields in order) for `encode_record`."""
    return (kind.name, kind.version), kind.values


_ENCODING = {kind.name: _encoding(kind) for kind in KINDS.values()}


def encode_record(record: dict[str, Any] | Sequence[Any]) -> bytes:
    """A record's WAL body: `[kind, version, *fields]`. A put already has that form; a dict
    record's fields are taken in declared order (a missing one is a KeyError: a bug)."""
    if type(record) is not dict:
        return _pack(record)
    head, values = _ENCODING[record["op"]]
    return _pack(head + values(record))


def decode_record(body: bytes) -> dict[str, Any] | tuple[Any, ...]:
    """A WAL body back to its in-memory record (see the module docstring), upgraded to the
    current version. Arrays decode as tuples (about a tenth faster than lists; records are
    only read). Raises WalVersionError for a record this build cannot read.

    Replay calls this once per record: a current record costs one lookup and two tests."""
    r = _unpack_tuples(body)
    try:
        version, width, keys = _DECODING[r[0]]
        current = r[1] == version and len(r) == width and type(r) is tuple
    except (LookupError, TypeError):  # a version-1 map (r[0] is no key of it), or junk
        current = False
    if not current:
        r = _current_form(r)
        version, width, keys = _DECODING[r[0]]
    if keys is None:
        return r  # type: ignore[no-any-return]
    return dict(zip(keys, r))  # noqa: B905 (the length is checked above)


def _current_form(raw: Any) -> tuple[Any, ...]:
    """A record that is not in its kind's current form, upgraded to it; or WalVersionError."""
    r: tuple[Any, ...]
    if type(raw) is not tuple:
        if type(raw) is not dict:
            raise WalVersionError(f"WAL record is a {type(raw).__name__}, not a record")
        r = upgrade_map_v1_to_v2(raw)
    elif len(raw) > 1 and type(raw[1]) is str:  # ["put", id, ...]: a version-1 put
        r = upgrade_put_v1_to_v2(raw)
    else:
        r = raw
    kind = KINDS.get(r[0]) if r else None
    if kind is None:
        raise WalVersionError(f"WAL record of unknown kind {r[0] if r else r!r}: written by a "
                              "newer build? Refusing to start rather than misread the log")
    if r[1] != kind.version:
        r = _upgrade(kind, r)
    if len(r) != len(kind.names) + 2:
        raise WalError(f"WAL record {kind.name} v{kind.version} has {len(r) - 2} fields; "
                       f"the schema has {len(kind.names)}")
    return r


def _upgrade(kind: Kind, r: tuple[Any, ...]) -> tuple[Any, ...]:
    """Step an old record up to `kind`'s version, one registered upgrade at a time."""
    version = r[1]
    if type(version) is not int or version > kind.version or version < 1:
        raise WalVersionError(
            f"WAL record {kind.name} is version {version!r}; this build reads versions up to "
            f"{kind.version}: refusing to start rather than misread the log (run the newer "
            f"build that wrote it)")
    while version < kind.version:
        step = UPGRADES.get((kind.name, version))
        if step is None:
            raise WalVersionError(f"no upgrade of WAL record {kind.name} from version {version}")
        r = step(r)
        version = r[1]
    return r


# ---------------------------------------------------------------- upgrades

def upgrade_put_v1_to_v2(r: tuple[Any, ...]) -> tuple[Any, ...]:
    """Version 1 put: `["put", *JOB fields]`, no version. The fields are unchanged."""
    if len(r) != len(JOB) + 1:
        raise WalVersionError(f"WAL put record with {len(r) - 1} job fields (this build reads "
                              f"{len(JOB)}): a layout of a development build, not supported")
    return (PUT, 2, *r[1:])


#: The fields of every kind but put at version 1 (maps) and 2 (arrays, in this order): history,
#: never edited. A later version of a kind changes its `KINDS` entry, not this.
V1_FIELDS: dict[str, tuple[str, ...]] = {
    "lease": ("id", "now", "worker", "token", "deadline"),
    "ack": ("id", "now", "result"),
    "due": ("id", "now"),
    "beat": ("id", "now", "deadline"),
    "fail": ("id", "now", "error", "retry_at"),
    "cancel": ("id", "now", "reason"),
    "retry": ("id", "now"),
    "log": ("id", "lines"),
    "pause": ("queue",),
    "resume": ("queue",),
    "limit": ("queue", "concurrency", "rate", "per_ms"),
    "counters": ("queue", "processed", "failed"),  # newer than version 1: the same order
    "delete": ("ids",),
    "archive": ("ids",),
    "restore": ("job",),
    "keys": ("keys",),
    "batch": ("batch",),
    "batch-new": ("id", "now", "success", "complete"),
    "batch-commit": ("id",),
    "batch-fired": ("id", "which", "now"),
    "batch-drop": ("ids",),
    "cron-set": ("entry",),
    "cron-del": ("name",),
    "cron-pause": ("name", "now"),
    "cron-resume": ("name", "now"),
    "cron-fired": ("name", "slot", "job"),
}


def upgrade_map_v1_to_v2(r: dict[str, Any]) -> tuple[Any, ...]:
    """Version 1 of every kind but put: a map with the kind in "op". Version 2 lists the same
    fields, in `V1_FIELDS` order."""
    op = r.get("op")
    names = V1_FIELDS.get(op) if type(op) is str else None
    if names is None:
        raise WalVersionError(f"WAL record map of kind {op!r} is not one this build reads: "
                              "refusing to start rather than misread the log")
    try:
        return (op, 2, *[r[name] for name in names])
    except KeyError as exc:
        raise WalVersionError(f"WAL record {op} (version 1) lacks field {exc}") from None


#: (kind, version) -> the function that turns that version's record into the next one's.
#: Unversioned (version 1) records are recognised by their shape in `decode_record`.
UPGRADES: dict[tuple[str, int], Callable[[tuple[Any, ...]], tuple[Any, ...]]] = {}


# ---------------------------------------------------------------- the job layout in code

def _compile_job_functions() -> tuple[Callable[..., list[Any]], Callable[[Any], list[Any]]]:
    """`job_record(**fields)` and `dump_job(job)`, generated from JOB so the order and the
    defaults are written once and each call is a single list display (push and snapshot
    speed: no loop over the fields). Container defaults are fresh per call."""
    params, items = [], []
    namespace: dict[str, Any] = {}
    for f in JOB:
        if f.default is REQUIRED:
            params.append(f.name)
            items.append(f.name)
        elif isinstance(f.default, list | dict):
            params.append(f"{f.name}=None")
            items.append(f"{'[]' if isinstance(f.default, list) else '{}'} if {f.name} is None "
                         f"else {f.name}")
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
            items.append(f.name)
    source = (f"def job_record(*, {', '.join(params)}):\n"
              f"    return [{', '.join(items)}]\n"
              f"def dump_job(job):\n"
              f"    return [{', '.join(f.dump for f in JOB)}]\n")
    exec(compile(source, "<jobcached.jobs.records>", "exec"), namespace)
    return namespace["job_record"], namespace["dump_job"]


#: job_record(id=..., queue=..., ...): JOB's fields as a list, defaults filled in.
#: dump_job(job): what `Job.to_record()` returns.
job_record, dump_job = _compile_job_functions()
