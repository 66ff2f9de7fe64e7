"""`help COMMAND`: a command's syntax line, summary, version and group, as redis-cli shows them.

The server describes each command's arguments in `COMMAND DOCS` as Redis' nested argument
specs; redis-cli (since 7.0) turns them back into a syntax line, and so does `syntax_line`
here, step for step (redis-cli.c `cliAddArgument`): the same specs give the same line, which
a test checks against redis-cli itself.
"""

from __future__ import annotations

from jobcached_client.cli.resp import Connection, Kind, Reply

#: Argument types shown by their name (redis-cli's list); `oneof` and `block` are groups.
_NAMED_TYPES = frozenset({"key", "string", "integer", "double", "pattern", "unix-time",
                          "token"})

GENERAL_HELP = ("jobcached-cli: type a command and its arguments, Tab to complete names;\n"
                "'help <command>' for a command's syntax and summary; 'quit' to leave.")


def _field(spec: Reply, key: str) -> Reply | None:
    if spec.kind not in (Kind.MAP, Kind.ARRAY):
        return None
    for k, v in spec.pairs():
        if k.text() == key:
            return v
    return None


def _or_quotes(text: str) -> str:
    return text or '""'


def _join(arguments: Reply | None, separator: str) -> str:
    return separator.join(_argument(spec) for spec in (arguments.value or [])) \
        if arguments is not None else ""


def _argument(spec: Reply) -> str:
    """One argument spec as text: `[TOKEN name [name ...]]` and so on."""
    name, token, kind = (_field(spec, key) for key in ("name", "token", "type"))
    kind_text = kind.text() if kind is not None else ""
    flag_reply = _field(spec, "flags")
    flags = {flag.text() for flag in (flag_reply.value or [])} if flag_reply else set()
    token_part = _or_quotes(token.text()) if token is not None else ""
    if kind_text in _NAMED_TYPES:
        repeat = _or_quotes(name.text() if name is not None else "")
    elif kind_text == "oneof":
        repeat = _join(_field(spec, "arguments"), "|")
    elif kind_text == "block":
        repeat = _join(_field(spec, "arguments"), " ")
    else:  # pure-token
        repeat = ""
    if token_part and kind_text != "pure-token":
        token_part += " "
    text = token_part + repeat
    if "multiple" in flags:
        again = (token_part if "multiple_token" in flags else "") + repeat
        text += f" [{again} ...]"
    return f"[{text}]" if "optional" in flags else text


def syntax_line(doc: Reply) -> str:
    """The arguments of one COMMAND DOCS entry as a syntax line (without the command name)."""
    return _join(_field(doc, "arguments"), " ")


def describe(name: str, doc: Reply) -> str:
    """The text `help NAME` prints for one COMMAND DOCS entry (redis-cli's layout)."""

    def text(key: str) -> str:
        value = _field(doc, key)
        return value.text() if value is not None and value.kind is not Kind.NIL else ""

    return (f"\n  {name} {syntax_line(doc)}\n  summary: {text('summary')}\n"
            f"  since: {text('since')}\n  group: {text('group')}\n")


def find_doc(docs: Reply, words: list[str]) -> Reply | None:
    """The COMMAND DOCS entry for `words` (a command, or a container and its subcommand)."""
    wanted = [word.lower() for word in words]
    entry = _field(docs, wanted[0]) if docs.kind in (Kind.MAP, Kind.ARRAY) else None
    if entry is None or len(wanted) == 1:
        return entry
    subcommands = _field(entry, "subcommands")
    return _field(subcommands, "|".join(wanted[:2])) if subcommands is not None else None


def command_help(conn: Connection, words: list[str]) -> str | None:
    """What `help WORDS` prints, asking the server's COMMAND DOCS; None for an unknown name."""
    if not words:
        return GENERAL_HELP
    docs = conn.call("COMMAND", "DOCS", words[0])
    doc = find_doc(docs, words) if not docs.is_error else None
    return describe(" ".join(words).upper(), doc) if doc is not None else None
