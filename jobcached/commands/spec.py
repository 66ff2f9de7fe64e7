"""Generate protocol/SPEC.md from the command table: `python -m jobcached.commands.spec`.

The contract is written once, next to the code that keeps it: each handler's docstring gives the
syntax, what the command does, its reply and its errors; the table gives arity, flags and keys.
`protocol/spec-preamble.md` holds the conventions every command shares. A test regenerates the
file and compares, so SPEC.md and the server cannot drift apart (`make spec` rewrites it).
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

from jobcached.commands.registry import Command, all_commands, load_all

PREAMBLE = Path(__file__).resolve().parents[2] / "protocol" / "spec-preamble.md"

#: the order groups appear in, with their headings
GROUPS = {
    "connection": "Connection", "server": "Server", "string": "Strings", "bitmap": "Bitmaps",
    "hyperloglog": "HyperLogLog", "generic": "Keys",
    "hash": "Hashes", "list": "Lists", "set": "Sets", "sorted-set": "Sorted sets",
    "ratelimit": "Rate limiting", "transactions": "Transactions", "scripting": "Scripting",
    "pubsub": "Pub/sub",
    "job": "Jobs", "queue": "Queues",
    "dlq": "Dead letters", "cron": "Cron", "batch": "Batches", "replication": "Replication",
}


def _entry(cmd: Command) -> str:
    facts = [f"arity {cmd.arity}"]
    if cmd.flag_names():
        facts.append("flags " + ", ".join(cmd.flag_names()))
    if cmd.keys != (0, 0, 0):
        first, last, step = cmd.keys
        facts.append(f"keys {first}..{last} step {step}")
    lines = [f"### {cmd.display_name}", "", f"`{cmd.syntax}`", "", " · ".join(facts), ""]
    if cmd.doc:
        lines += [cmd.doc, ""]
    return "\n".join(lines)


def render() -> str:
    """The whole SPEC.md text."""
    load_all()
    parts = [PREAMBLE.read_text().rstrip() + "\n"]
    commands = sorted(all_commands(), key=lambda c: (list(GROUPS).index(c.group)
                                                     if c.group in GROUPS else 99, c.name))
    for group, members in groupby(commands, key=lambda c: c.group):
        parts.append(f"## {GROUPS.get(group, group.title())}\n")
        for cmd in members:
            if cmd.handler is not None:
                parts.append(_entry(cmd))
            for sub in sorted(cmd.subcommands.values(), key=lambda c: c.name):
                parts.append(_entry(sub))
    return "\n".join(parts).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
