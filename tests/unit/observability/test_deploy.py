"""deploy/: the sample config is generated from the Config dataclass, and the manifests
probe the endpoints the server serves."""

from __future__ import annotations

import re
from pathlib import Path

from jobcached.config import Config, load_config, sample_config

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def test_committed_sample_config_is_the_generated_one() -> None:
    assert (DEPLOY / "jobcached.conf").read_text() == sample_config(), (
        "deploy/jobcached.conf is stale: run `python -m jobcached.config > "
        "deploy/jobcached.conf`")


def test_sample_config_lists_every_key_and_uncommented_gives_the_defaults(
        tmp_path: Path) -> None:
    text = sample_config()
    settings = [line[2:] for line in text.splitlines()
                if re.match(r"# [a-z][a-z-]* \S", line) and line[2:].split()[0] in Config.names()]
    assert [line.split()[0] for line in settings] == Config.names()
    for name in Config.names():
        assert Config().help(name).split()[0] in text
    conf = tmp_path / "all.conf"
    conf.write_text("\n".join(settings) + "\n")
    assert load_config({}, {}, str(conf)) == Config()


def test_pod_probes_and_grace_period() -> None:
    pod = (DEPLOY / "kubernetes" / "pod.yaml").read_text()
    assert re.search(r"livenessProbe:\s+httpGet:\s+path: /healthz", pod)
    assert re.search(r"readinessProbe:\s+httpGet:\s+path: /readyz", pod)
    assert "emptyDir" in pod and "--unixsocket" in pod and "preStop" in pod
    grace = int(re.search(r"terminationGracePeriodSeconds: (\d+)", pod).group(1))  # type: ignore[union-attr]
    shutdown = int(re.search(r'--shutdown-timeout\s+- "(\d+)"', pod).group(1))  # type: ignore[union-attr]
    pre_stop = int(re.search(r'command: \["sleep", "(\d+)"\]', pod).group(1))  # type: ignore[union-attr]
    assert grace > shutdown + pre_stop


def test_systemd_unit_runs_serve_and_outwaits_the_drain() -> None:
    unit = (DEPLOY / "jobcached.service").read_text()
    assert re.search(r"^ExecStart=\S*jobcached serve ", unit, re.M)
    stop = int(re.search(r"^TimeoutStopSec=(\d+)", unit, re.M).group(1))  # type: ignore[union-attr]
    assert stop > Config().shutdown_timeout
