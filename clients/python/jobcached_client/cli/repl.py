"""The interactive prompt of `jobcached-cli` (prompt_toolkit), as redis-cli's.

- The prompt is the server's address (`127.0.0.1:7380> `), or `not connected> `.
- History persists in `~/.jobcachedcli_history` (`$JOBCACHEDCLI_HISTFILE` moves it; an empty
  value or /dev/null keeps it in memory only).
- Tab completes command names, and subcommands after CLIENT, CONFIG, ..., from what the server
  says in `COMMAND DOCS` when the prompt opens; `help CMD` shows a command's syntax and summary.
- `N CMD ...` runs a command N times; `connect host port` switches servers; `quit` / `exit`
  or Ctrl-D leave. A dropped connection is reopened (once) for the next command.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory

from jobcached_client.cli.format import SplitError, render, split_args
from jobcached_client.cli.helptext import command_help
from jobcached_client.cli.resp import Connection, Kind, Reply
from jobcached_client.cli.target import Target

HISTORY_FILE = ".jobcachedcli_history"


@dataclass
class CommandDocs:
    """Command names (upper case) with their summary, and subcommands per container."""

    summaries: dict[str, str] = field(default_factory=dict)
    subcommands: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def from_reply(cls, reply: Reply) -> CommandDocs:
        docs = cls()
        if reply.kind not in (Kind.MAP, Kind.ARRAY):
            return docs
        for name, doc in reply.pairs():
            upper = name.text().upper()
            fields = _doc_fields(doc)
            docs.summaries[upper] = fields.get("summary", "")
            subs = _find(doc, "subcommands")
            if subs is not None:
                docs.subcommands[upper] = {
                    sub.text().partition("|")[2].upper(): _doc_fields(sub_doc).get("summary", "")
                    for sub, sub_doc in subs.pairs()}
        return docs


def _find(doc: Reply, key: str) -> Reply | None:
    if doc.kind not in (Kind.MAP, Kind.ARRAY):
        return None
    for k, v in doc.pairs():
        if k.text() == key:
            return v
    return None


def _doc_fields(doc: Reply) -> dict[str, str]:
    if doc.kind not in (Kind.MAP, Kind.ARRAY):
        return {}
    return {k.text(): v.text() for k, v in doc.pairs()
            if v.kind in (Kind.BULK, Kind.STATUS, Kind.VERBATIM)}


class CommandCompleter(Completer):
    """Completes the first word from the command names, the second from subcommands."""

    def __init__(self, docs: Callable[[], CommandDocs]) -> None:
        self.docs = docs  # read at each completion: the docs are reloaded on `connect`

    def get_completions(self, document: Document,
                        complete_event: CompleteEvent) -> Iterator[Completion]:
        before = document.text_before_cursor
        words = before.split()
        ends_word = not before or before[-1].isspace()
        if len(words) + ends_word == 1:  # typing the command name
            candidates = self.docs().summaries
            prefix = words[0] if words else ""
        elif len(words) + ends_word == 2:  # typing a subcommand
            candidates = self.docs().subcommands.get(words[0].upper(), {})
            prefix = "" if ends_word else words[1]
        else:
            return
        for name in sorted(candidates):
            if name.startswith(prefix.upper()):
                yield Completion(name, start_position=-len(prefix),
                                 display_meta=candidates[name])


def open_history() -> History:
    path = os.environ.get("JOBCACHEDCLI_HISTFILE",
                          os.path.join(os.path.expanduser("~"), HISTORY_FILE))
    if not path or path == os.devnull:
        return InMemoryHistory()
    return FileHistory(path)


class Repl:
    def __init__(self, target: Target, conn: Connection, mode: str) -> None:
        self.target = target
        self.conn = conn
        self.mode = mode
        self.docs = CommandDocs()

    def prompt(self) -> str:
        return f"{self.target.address}> " if self.conn.connected else "not connected> "

    def run(self) -> None:
        self.load_docs()
        session: PromptSession[str] = PromptSession(
            history=open_history(), completer=CommandCompleter(lambda: self.docs),
            complete_while_typing=False)
        while True:
            try:
                line = session.prompt(self.prompt())
            except KeyboardInterrupt:
                continue
            except EOFError:
                return
            if not self.handle(line):
                return

    def load_docs(self) -> None:
        try:
            if not self.conn.connected:
                self.conn = self.target.connect()
            self.docs = CommandDocs.from_reply(self.conn.call("COMMAND", "DOCS"))
        except OSError:
            pass  # no completion until the server can be reached

    def handle(self, line: str) -> bool:
        """Run one line; False to leave the prompt."""
        try:
            args = split_args(line)
        except SplitError:
            print("Invalid argument(s)")
            return True
        if not args:
            return True
        word = args[0].decode("utf-8", "replace").lower()
        if word in ("quit", "exit"):
            return False
        if word == "clear":
            sys.stdout.write("\x1b[H\x1b[2J")
            return True
        if word == "help":
            self.help(args[1:])
            return True
        if word == "connect" and len(args) in (2, 3):
            self.target.host = args[1].decode()
            self.target.port = int(args[2]) if len(args) == 3 else self.target.port
            self.target.path = None
            self.conn.close()
            self.reconnect()
            self.load_docs()
            return True
        repeat = 1
        if word.isdigit() and len(args) > 1:
            repeat, args = int(word), args[1:]
        for _ in range(repeat):
            reply = self.call(args)
            if reply is None:
                break
            sys.stdout.write(render(reply, args, self.mode))
            sys.stdout.flush()
        return True

    def call(self, args: list[bytes]) -> Reply | None:
        for attempt in (1, 2):
            if not self.conn.connected and not self.reconnect():
                return None
            try:
                return self.conn.call(*args)
            except KeyboardInterrupt:
                self.conn.close()  # a reply may still come: start over with a new connection
                print()
                return None
            except OSError as exc:
                self.conn.close()
                if attempt == 2:
                    print(f"Error: {exc}")
        return None

    def reconnect(self) -> bool:
        try:
            self.conn = self.target.connect()
            return True
        except OSError as exc:
            print(f"Could not connect to jobcached at {self.target.address}: "
                  f"{exc.strerror or exc}")
            return False

    def help(self, args: list[bytes]) -> None:
        """`help CMD [SUB]`: its syntax line and summary from the server's COMMAND DOCS."""
        words = [a.decode("utf-8", "replace") for a in args]
        if words and not self.conn.connected and not self.reconnect():
            return
        try:
            text = command_help(self.conn, words)
        except OSError as exc:
            self.conn.close()
            print(f"Error: {exc}")
            return
        print(text if text is not None else f"no help for '{' '.join(words)}'")
