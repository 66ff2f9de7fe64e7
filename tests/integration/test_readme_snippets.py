"""Every code block in README.md and clients/python/README.md runs as written, against a real
server: a reader who copies a snippet gets what the README shows.

Theory of operation. Each README gets its own server on a free port and its own empty
directory; its fenced blocks run in document order, with the documented port 7380 replaced by
the server's, and with `.venv/bin` first on PATH (the README asks readers to activate it):

- A ```python block whose preceding line names a file (`` `tasks.py`: ``) is written as that
  file. Other ```python blocks run one after another in one Python process, so a block may use
  what an earlier one defined, as a reader's session would. A top-level `print(...)  # text`
  must print exactly `text`.
- A ```console block is a shell session: each `$ ` line runs in one bash on a pseudo-terminal
  (redis-cli formats replies for people only there), must exit 0, and must print the lines
  shown under it, if any. `...` on a line of its own stands for any lines; job ids (ULIDs) and
  lease tokens (16 hex digits) match any others, since they differ on every run.
- A ```sh block runs as one `bash -e` script and must exit 0; a `# prints: text` comment in it
  means its output has the line `text`.
- `<!-- snippet: skip (reason) -->` on the line before a block skips it, visibly in the README
  and with its reason. Skips are counted: at most MAX_SKIPPED_PER_FILE a file.

Blocks without a language (file trees, tables) are text and are not run; a block in a
language this test does not know fails, so that no snippet goes unchecked by accident.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
READMES = ["README.md", "clients/python/README.md"]
#: The port the READMEs use; each test replaces it with its server's.
DOC_PORT = "7380"
SHELL, CONSOLE, PYTHON, TEXT = "sh", "console", "python", ""
LANGUAGES = {"sh": SHELL, "bash": SHELL, "shell": SHELL, "console": CONSOLE, "python": PYTHON,
             "py": PYTHON, "": TEXT}
#: A README that needs more skips than this should have its snippets made runnable instead.
MAX_SKIPPED_PER_FILE = 2
#: No snippet here waits for long; a hung one fails after this many seconds.
SNIPPET_TIMEOUT_SECONDS = 60.0

SKIP_MARKER = re.compile(r"^<!--\s*snippet:\s*skip\s*\((?P<reason>.+)\)\s*-->$")
NAMES_A_FILE = re.compile(r"`(?P<name>[\w.-]+\.py)`:$")
ANNOTATED_PRINT = re.compile(r"^print\((?P<args>.*)\)\s+#\s?(?P<expected>.*)$")
PRINTS_COMMENT = re.compile(r"#\s*prints:\s*(?P<expected>.*)$", re.MULTILINE)
#: Values that differ on every run: (pattern, what both sides become before comparing).
VARYING = [(re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b"), "<job id>"),
           (re.compile(r"\b[0-9a-f]{16}\b"), "<token>")]
STEP_MARK = "@@snippet-step@@"

#: Runs the Python blocks of one README in one namespace: a JSON line in, a JSON line out.
SESSION = r"""
import contextlib, io, json, sys, traceback

def snippet_print(expected, *args):
    text = " ".join(str(a) for a in args)
    print(text)
    if text != expected:
        raise AssertionError(f"printed {text!r}; the README says {expected!r}")

namespace = {"__name__": "__main__", "__snippet_print__": snippet_print}
for request in sys.stdin:
    block = json.loads(request)
    out, ok = io.StringIO(), True
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(block["code"], block["where"], "exec"), namespace)
    except BaseException:
        ok = False
        out.write(traceback.format_exc())
    sys.__stdout__.write(json.dumps({"ok": ok, "out": out.getvalue()}) + "\n")
    sys.__stdout__.flush()
"""


@dataclass(frozen=True)
class Snippet:
    readme: str
    line: int  # of the opening fence
    language: str
    code: str
    skip: str | None = None  # the reason given in the marker
    file: str | None = None  # a python block that is this file

    @property
    def where(self) -> str:
        return f"{self.readme}:{self.line}"


def snippets(readme: str, markdown: str) -> list[Snippet]:
    """The fenced blocks of a README (text blocks left out), with their markers."""
    found: list[Snippet] = []
    lines = markdown.splitlines()
    before = ""  # the last non-blank line before the current one, outside blocks
    i = 0
    while i < len(lines):
        fence = re.fullmatch(r"```(\w*)\s*", lines[i])
        if fence is None:
            before = lines[i].strip() or before
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        assert end is not None, f"{readme}:{i + 1}: a code block is not closed"
        language = fence.group(1)
        if language not in LANGUAGES:
            pytest.fail(f"{readme}:{i + 1}: no way to check a ```{language} block")
        if LANGUAGES[language] != TEXT:
            skip, names = SKIP_MARKER.match(before), NAMES_A_FILE.search(before)
            found.append(Snippet(readme, i + 1, LANGUAGES[language],
                                 "\n".join(lines[i + 1:end]) + "\n",
                                 skip.group("reason") if skip else None,
                                 names.group("name") if names else None))
        before = ""
        i = end + 1
    return found


def normal(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        for pattern, replacement in VARYING:
            line = pattern.sub(replacement, line)
        out.append(line.rstrip())
    while out and not out[-1]:
        out.pop()
    return out


def shows(expected: list[str], actual: list[str]) -> bool:
    """Whether `actual` output is what the README shows (`...`: any lines)."""
    want, got = normal(expected), normal(actual)

    @cache
    def match(w: int, g: int) -> bool:
        if w == len(want):
            return g == len(got)
        if want[w].strip() == "...":
            return any(match(w + 1, k) for k in range(g, len(got) + 1))
        return g < len(got) and want[w] == got[g] and match(w + 1, g + 1)
    return match(0, 0)


def console_steps(snippet: Snippet) -> list[tuple[str, list[str]]]:
    steps: list[tuple[str, list[str]]] = []
    for line in snippet.code.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"{snippet.where}: output before the first `$ ` prompt"
            steps[-1][1].append(line)
    return steps


def on_a_terminal(script: str, cwd: Path, env: dict[str, str]) -> str:
    """What bash running `script` writes to a pseudo-terminal."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(["bash", "--noprofile", "--norc", "-c", script], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
                            start_new_session=True)
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + SNIPPET_TIMEOUT_SECONDS
    try:
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([leader], [], [], left)[0]:
                continue
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        else:
            raise AssertionError(f"no end after {SNIPPET_TIMEOUT_SECONDS} s")
    finally:
        os.close(leader)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # and whatever it left in the background
        proc.wait()
    return b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


class Runner:
    """Runs one README's snippets in `directory` against the server on `port`."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory, self.port = directory, str(port)
        self.env = {**os.environ,
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        self._session: subprocess.Popen[bytes] | None = None

    def code(self, snippet: Snippet) -> str:
        return snippet.code.replace(DOC_PORT, self.port)

    def run(self, snippet: Snippet) -> None:
        """Raise AssertionError, saying why, if the snippet does not do what it shows."""
        if snippet.file is not None:
            (self.directory / snippet.file).write_text(self.code(snippet))
        elif snippet.language == PYTHON:
            self.python(snippet)
        elif snippet.language == CONSOLE:
            self.console(snippet)
        else:
            self.shell(snippet)

    def shell(self, snippet: Snippet) -> None:
        code = self.code(snippet)
        # A session of its own, so that what the snippet leaves running in the background
        # (a worker, a server) is stopped with it, even when it hangs.
        proc = subprocess.Popen(["bash", "--noprofile", "--norc", "-e", "-c", code],
                                cwd=self.directory, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=SNIPPET_TIMEOUT_SECONDS)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        output = stdout.decode(errors="replace")
        assert proc.returncode == 0, \
            f"exit code {proc.returncode}:\n{output}{stderr.decode(errors='replace')}"
        for expected in PRINTS_COMMENT.finditer(code):
            assert expected.group("expected") in output.splitlines(), \
                f"no line {expected.group('expected')!r} in:\n{output}"

    def console(self, snippet: Snippet) -> None:
        steps = console_steps(snippet)
        script = "".join(f"{command.replace(DOC_PORT, self.port)}\n"
                         f"printf '\\n{STEP_MARK}%d\\n' $?\n" for command, _ in steps)
        output = on_a_terminal(script, self.directory, self.env)
        parts = output.split(STEP_MARK)
        assert len(parts) == len(steps) + 1, f"the session ended early:\n{output}"
        for n, (command, expected) in enumerate(steps):
            status = int(parts[n + 1].split("\n", 1)[0])
            shown = parts[n].split("\n", 1)[1] if n else parts[n]
            lines = shown.split("\n")
            assert status == 0, f"`{command}` exited {status}:\n{shown}"
            if expected:
                assert shows(expected, lines), (
                    f"`{command}` printed:\n{shown}\nthe README shows:\n" + "\n".join(expected))

    def python(self, snippet: Snippet) -> None:
        if self._session is None:
            self._session = subprocess.Popen([sys.executable, "-c", SESSION],
                                             cwd=self.directory, env=self.env,
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._session.stdin is not None and self._session.stdout is not None
        code = "\n".join(
            f"__snippet_print__({m.group('expected')!r}, {m.group('args')})"
            if (m := ANNOTATED_PRINT.match(line)) else line
            for line in self.code(snippet).splitlines())
        request = {"code": code, "where": snippet.where}
        self._session.stdin.write(json.dumps(request).encode() + b"\n")
        self._session.stdin.flush()
        ready = select.select([self._session.stdout], [], [], SNIPPET_TIMEOUT_SECONDS)[0]
        assert ready, f"no end after {SNIPPET_TIMEOUT_SECONDS} s"
        reply: dict[str, Any] = json.loads(self._session.stdout.readline() or b"null") or {}
        assert reply.get("ok"), reply.get("out", "the Python session died")

    def close(self) -> None:
        if self._session is not None:
            self._session.kill()
            self._session.wait()
            for stream in (self._session.stdin, self._session.stdout):
                if stream is not None:
                    stream.close()


def run_all(found: list[Snippet], directory: Path, port: int) -> list[str]:
    """Run the snippets in order; what went wrong, one entry per failed snippet."""
    runner = Runner(directory, port)
    failures = []
    try:
        for snippet in found:
            if snippet.skip is None:
                try:
                    runner.run(snippet)
                except (AssertionError, subprocess.TimeoutExpired) as exc:
                    failures.append(f"{snippet.where} ({snippet.language}): {exc}")
    finally:
        runner.close()
    return failures


@pytest.mark.parametrize("readme", READMES)
def test_every_snippet_runs_as_written(readme: str, start_server: Any, tmp_path: Path) -> None:
    found = snippets(readme, (ROOT / readme).read_text())
    skipped = [f"{s.where}: {s.skip}" for s in found if s.skip is not None]
    assert len(skipped) <= MAX_SKIPPED_PER_FILE, f"too many skipped snippets: {skipped}"
    assert len(found) > len(skipped), "no snippet to run: is the parser broken?"
    server = start_server()
    work = tmp_path / "work"
    work.mkdir()
    failures = run_all(found, work, server.port)
    assert not failures, "\n\n".join(failures)


def test_a_broken_snippet_fails(start_server: Any, tmp_path: Path) -> None:
    """The checks above can fail: wrong output, a failing command, a raising block."""
    markdown = "\n".join([
        "```console", "$ redis-cli -p 7380 PING", "PANG", "```",
        "```console", "$ false", "```",
        "```sh", "echo hi   # prints: bye", "```",
        "```python", "print(1 + 1)  # 3", "```",
        "```python", "raise ValueError('broken')", "```",
        "<!-- snippet: skip (a reason) -->", "```sh", "exit 1", "```",
        "`mod.py`:", "```python", "raise SystemExit('only written, never run')", "```"])
    found = snippets("EXAMPLE.md", markdown)
    assert [(s.line, s.skip, s.file) for s in found] == [
        (1, None, None), (5, None, None), (8, None, None), (11, None, None),
        (14, None, None), (18, "a reason", None), (22, None, "mod.py")]
    server = start_server()
    failures = run_all(found, tmp_path, server.port)
    assert [f.split(" ", 1)[0] for f in failures] == [
        "EXAMPLE.md:1", "EXAMPLE.md:5", "EXAMPLE.md:8", "EXAMPLE.md:11", "EXAMPLE.md:14"]
    assert "PONG" in failures[0] and "ValueError: broken" in failures[4]
    assert (tmp_path / "mod.py").exists()
