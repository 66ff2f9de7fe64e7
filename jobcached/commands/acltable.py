"""The command table as ACL rules read it (security/acl.py's `CommandTable`).

ACL lives below the command layer and knows commands only through this view, built once the
table is complete: every command and subcommand, and the members of each category (Redis'
ACL CAT lists, and what `+@category` changes: those commands with their subcommands).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from jobcached.commands.docs import categories
from jobcached.commands.registry import Command, all_commands, load_all, lookup, walk
from jobcached.security.acl import CATEGORIES


@dataclass(frozen=True, eq=False)
class AclCommandTable:
    top: list[Command]
    every: frozenset[Command]
    members: dict[str, frozenset[Command]] = field(default_factory=dict)
    effective: dict[str, frozenset[Command]] = field(default_factory=dict)

    def lookup(self, name: bytes) -> Command | None:
        return lookup(name)


@functools.cache
def command_table() -> AclCommandTable:
    """The view, computed on first use after loading the whole table."""
    load_all()
    every = frozenset(walk())
    table = AclCommandTable(list(all_commands()), every)
    for name in CATEGORIES:
        found = frozenset(cmd for cmd in every if name in categories(cmd))
        table.members[name] = found
        table.effective[name] = found.union(*(cmd.subcommands.values() for cmd in found))
    return table
