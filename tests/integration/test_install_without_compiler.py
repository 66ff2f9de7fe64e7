"""A machine without a C compiler installs jobcached and runs it on the pure-Python codec.

The compiled request codec is optional (setup.py): this builds a wheel from a fresh copy of
the sources with `CC=false` (every compiler call fails) in a new virtualenv, as `pip install`
would on such a machine, then checks that the installed package has no compiled codec, that
its codec tests pass on the pure path, and that a server started from it answers and reports
`request_path:python`. The new venv gets jobcached alone (`--no-deps`); the dependencies and
test tools are read from this venv's site-packages, appended behind the new one's, so the
jobcached under test is the one just installed. Takes about 20 seconds; pip needs the package
index (or its cache) for the build requirements (setuptools, wheel, Cython).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import redis

from tests.conftest import STARTUP_TIMEOUT_SECONDS, free_port

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["setup.py", "setup.cfg", "pyproject.toml", "README.md", "LICENSE", "jobcached"]

#: run by the new venv's python: the codec tests of tests/unit/net on the pure path
CODEC_CHECK = """
import sys
sys.path.append(sys.argv[1])  # the tests package, behind the installed jobcached
import importlib.util
import jobcached
from jobcached.net import speedups
from tests.unit.net import test_resp, test_resp_fast_path
from tests.unit.net.codecs import load_codec

assert jobcached.__file__.startswith(sys.prefix), jobcached.__file__
assert importlib.util.find_spec("jobcached.net._speedups") is None
assert speedups.REQUEST_PATH == "python"
codec = load_codec("python")
for data, expected in test_resp.REQUESTS:
    test_resp.test_request_vectors(codec, data, expected)
    test_resp.test_requests_split_at_every_byte_boundary(codec, data, expected)
for data, reason in test_resp.BAD_REQUESTS:
    test_resp.test_bad_requests_raise_protocol_errors(codec, data, reason)
for reply, resp2, resp3 in test_resp.REPLIES:
    test_resp.test_reply_vectors(codec, reply, resp2, resp3)
test_resp_fast_path.test_a_limit_lowered_between_pipelined_commands_applies_to_the_next_one(codec)
print("pure codec ok")
"""


def run(cmd: list[str], cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd, env=env,
                            check=False)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_installs_and_runs_without_a_compiler(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns(
                "*.so", "*.c", "__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    install = run([python, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
                   str(source)], env={**os.environ, "CC": "false"}, cwd=tmp_path)
    assert "Successfully installed jobcached" in install.stdout
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    Path(site.stdout.strip(), "zz-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")

    check = run([python, "-c", CODEC_CHECK, str(ROOT)], cwd=tmp_path)
    assert "pure codec ok" in check.stdout

    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [python, "-m", "jobcached", "serve", "--port", str(port), "--dir", str(tmp_path / "d"),
         "--loglevel", "warning", "--metrics-port", "0"],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if k != "JOBCACHED_PURE_PYTHON"})
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "server.log").read_text()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)
        client = redis.Redis(port=port, socket_timeout=10)
        assert client.set("k", "v" * 100)
        pipe = client.pipeline(transaction=False)
        for _ in range(50):
            pipe.incr("n")
            pipe.get("k")
        assert pipe.execute()[-2:] == [50, b"v" * 100]
        assert client.info("server")["request_path"] == "python"
        client.close()
    finally:
        server.terminate()
        server.wait(15)
        log.close()
