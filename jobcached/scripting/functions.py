"""Redis 7 functions, engine side: libraries, their functions, and loading them.

A library is Lua code with a shebang (`#!lua name=mylib`) that registers functions with
`redis.register_function` when FUNCTION LOAD runs it; FCALL then calls a function by name.
This module owns what Redis keeps in its `functionsLibCtx`: libraries by name (case-sensitive,
as in Redis) and functions by name (case-insensitive), with Redis 7.0's checks and error texts
(src/functions.c). Running a library's code and calling functions is the ScriptEngine's job;
replies and commands are in `jobcached/commands/functions.py`.

Loading is all-or-nothing: a library is compiled and run before anything changes, and on any
error (including a name clash with another library's function) the old state stays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from jobcached.scripting.engine import Script, ScriptEngine, ScriptError

_NAME = re.compile(rb"[A-Za-z0-9_]+\Z")
NAME_RULE = ("Library names can only contain letters, numbers, or underscores(_) and must be at "
             "least one character long")


@dataclass(eq=False)
class Library:
    """One loaded library: its full code (shebang included, what LIST WITHCODE and DUMP
    give back) and its functions in registration order."""

    name: bytes
    code: bytes
    functions: list[Function] = field(default_factory=list)


@dataclass(eq=False)
class Function:
    """A registered function: FCALL runs `script` (its callback, with the function's flags)."""

    name: bytes
    description: bytes | None
    flags: list[str]
    script: Script


class Libraries:
    """The loaded libraries and the index of their functions. FCALL finds a function
    case-insensitively, and two libraries may not have functions whose names differ only by
    case; inside one library Redis 7.0 compares names exactly (`f` and `F` may coexist, and
    FCALL then finds the last one registered)."""

    def __init__(self) -> None:
        self.libraries: dict[bytes, Library] = {}
        self.functions: dict[bytes, Function] = {}  # lowercased name -> function

    def function(self, name: bytes) -> Function | None:
        return self.functions.get(name.lower())

    def function_count(self) -> int:
        return sum(len(library.functions) for library in self.libraries.values())

    def add(self, library: Library, replace: bool) -> None:
        """Add `library` (replacing the one of the same name if `replace`), or raise
        ScriptError if a function name is taken by another library, as libraryJoin does."""
        old = self.libraries.get(library.name)
        if old is not None and not replace:
            raise ScriptError(f"Library '{_text(library.name)}' already exists")
        for function in library.functions:
            owner = self.functions.get(function.name.lower())
            if owner is not None and owner.script.library != _text(library.name):
                raise ScriptError(f"Function {_text(function.name)} already exists")
        if old is not None:
            self.remove(old.name)
        self.libraries[library.name] = library
        for function in library.functions:
            self.functions[function.name.lower()] = function

    def remove(self, name: bytes) -> None:
        library = self.libraries.pop(name)
        for function in library.functions:
            self.functions.pop(function.name.lower(), None)

    def clear(self) -> None:
        self.libraries.clear()
        self.functions.clear()


def load_library(libraries: Libraries, engine: ScriptEngine, code: bytes,
                 replace: bool) -> Library:
    """FUNCTION LOAD (functionsCreateWithLibraryCtx): check the shebang and the name, run the
    code to collect its functions, then add the library. Raises ScriptError, changing
    nothing, on any failure."""
    name, body = parse_metadata(code)
    if name in libraries.libraries and not replace:
        raise ScriptError(f"Library '{_text(name)}' already exists")
    library = Library(name, code)
    for fname, callback, description, raw_flags in engine.load_library(body):
        flags = [flag.decode() for flag in raw_flags]
        script = Script(_text(fname), code, callback, frozenset(flags), library=_text(name))
        library.functions.append(Function(fname, description, flags, script))
    if not library.functions:
        raise ScriptError("No functions registered")
    libraries.add(library, replace)
    return library


def parse_metadata(code: bytes) -> tuple[bytes, bytes]:
    """(library name, code to compile) from `#!<engine> name=<name>` (functionExtractLib-
    MetaData); the code keeps the shebang's newline so error line numbers are the user's."""
    if not code.startswith(b"#!"):
        raise ScriptError("Missing library metadata")
    newline = code.find(b"\n")
    if newline < 0:
        raise ScriptError("Invalid library metadata")
    parts = code[:newline].split()
    if not parts:
        raise ScriptError("Invalid library metadata")
    engine = parts[0][2:]
    name: bytes | None = None
    for part in parts[1:]:
        if part[:5].lower() == b"name=":
            if name is not None:
                raise ScriptError("Invalid metadata value, name argument was given multiple "
                                  "times")
            name = part[5:]
            continue
        raise ScriptError(f"Invalid metadata value given: {_text(part)}")
    if name is None:
        raise ScriptError("Library name was not given")
    if engine.lower() != b"lua":
        raise ScriptError(f"Engine '{_text(engine)}' not found")
    if not _NAME.match(name):
        raise ScriptError(NAME_RULE)
    return name, code[newline:]


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")
