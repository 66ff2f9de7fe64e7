"""Job records as bytes: the one encoder and decoder of what the job engine logs.

The engine encodes every record *before* it applies it (see `jobs/engine.py`), so a record
that cannot be logged changes nothing; the WAL and compaction write these bodies, and replay
decodes them back. One Packer serves the process: `packb` builds a new one for every record,
and records are encoded only on the event loop thread (and in the compaction child, a copy of
it), never by two threads at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import msgpack

#: A record to its WAL body.
encode_record: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True).pack

#: A WAL record body back to its dict (a put: its array, see `engine.put_record`): msgpack's C
#: function itself (through `partial`, also C) rather than a wrapper, because replay calls it
#: once per record. Arrays come back as tuples, about a tenth faster to decode than lists;
#: records are only read (msgpack >= 1.0 decodes str types to str by default: `raw=False`).
decode_record: Callable[[bytes], Any] = functools.partial(msgpack.unpackb, use_list=False)
