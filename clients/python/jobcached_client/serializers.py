"""How payloads and results become bytes on the wire, and back.

A serializer is any object with `dumps(obj) -> bytes | str` and `loads(bytes) -> obj`: the
`json` and `pickle` modules qualify as they are. The default, `JSONSerializer`, writes compact
UTF-8 JSON. Payloads and results share the client's serializer, so what a handler returns is
what `client.jobs.get(id).result` gives back.

Bytes are never serialized: `push(queue, b"...")` sends them as they are. On the way back the
JSON serializer decodes anything that is JSON text and hands other data back as bytes, so jobs
pushed by other tools (`redis-cli JOB.PUSH q hello`) still reach a handler; `Job.raw_payload`
always holds the exact bytes.
"""

from __future__ import annotations

import json
from typing import Any, Protocol


class Serializer(Protocol):
    """What a client needs to turn payloads and results into bytes and back."""

    def dumps(self, obj: Any) -> bytes | str: ...

    def loads(self, data: bytes) -> Any: ...


class JSONSerializer:
    """Compact UTF-8 JSON; data that is not JSON comes back as bytes (see the module doc)."""

    def dumps(self, obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(self, data: bytes) -> Any:
        try:
            return json.loads(data)
        except ValueError:  # also UnicodeDecodeError: not JSON text
            return bytes(data)

    def __repr__(self) -> str:
        return "JSONSerializer()"


def encode(serializer: Serializer, obj: Any) -> bytes:
    """A payload or result as wire bytes: bytes pass through, anything else is serialized."""
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj)
    data = serializer.dumps(obj)
    return data.encode() if isinstance(data, str) else data
