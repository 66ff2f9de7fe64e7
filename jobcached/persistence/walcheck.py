"""`jobcached wal check DIR`: a read-only report of a WAL directory.

Why apart from wal.py: the report is the operator's view (what is there, what is damaged and
whether it is only a torn tail), built on the same replay the server runs at start; the log
itself never needs it.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from jobcached.errors import WalVersionError
from jobcached.persistence.wal import WAL_VERSION, Wal


def summarize(path: str) -> dict[str, Any]:
    """Read-only report for `jobcached wal check DIR`: segments, records, bytes, first and last
    sequence numbers, and every damage found (file, byte offset, reason, whether a torn tail)."""
    wal = Wal(path)
    report = wal.report
    try:
        for _ in wal.replay(check=True):
            pass
    except WalVersionError as exc:
        report["corruption"].append({"file": None, "offset": 0, "reason": str(exc),
                                     "torn_tail": False})
    numbered = [s for s in report["segments"] if not s["base"]]
    records = sum(s["records"] for s in numbered)
    report.update(path=path, version=WAL_VERSION, records=records,
                  base_records=sum(s["records"] for s in report["segments"] if s["base"]),
                  bytes=sum(s["bytes"] for s in report["segments"]),
                  first_seq=numbered[0]["first_seq"] if records else None,
                  last_seq=wal.next_seq - 1 if records else None, stats=asdict(wal.stats),
                  ok=all(c["torn_tail"] for c in report["corruption"]))
    return report
