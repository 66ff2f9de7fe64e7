"""build_context: every tls-* setting reaches the SSLContext, and every bad combination is a
ConfigError naming the reason (the start prints it; CONFIG SET logs it and keeps the old one)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from jobcached.config import Config
from jobcached.errors import ConfigError
from jobcached.net.tls import build_context
from tools.tlscerts import Authority


def config_for(tmp_path: Path, **overrides: object) -> Config:
    ca = Authority(tmp_path)
    issued = ca.issue("server")
    settings: dict[str, object] = {"tls_port": 1, "tls_cert_file": str(issued.cert),
                                   "tls_key_file": str(issued.key),
                                   "tls_ca_cert_file": str(ca.cert)}
    settings.update(overrides)
    return Config(**settings)  # type: ignore[arg-type]


def test_defaults_require_client_certificates_over_tls_1_2_and_1_3(tmp_path: Path) -> None:
    context = build_context(config_for(tmp_path))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.maximum_version == ssl.TLSVersion.TLSv1_3
    assert not context.options & ssl.OP_CIPHER_SERVER_PREFERENCE


def test_settings_reach_the_context(tmp_path: Path) -> None:
    context = build_context(config_for(
        tmp_path, tls_auth_clients="optional", tls_protocols="TLSv1.3",
        tls_ciphers="ECDHE-ECDSA-AES128-GCM-SHA256", tls_prefer_server_ciphers=True))
    assert context.verify_mode == ssl.CERT_OPTIONAL
    assert context.minimum_version == context.maximum_version == ssl.TLSVersion.TLSv1_3
    assert context.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    assert build_context(config_for(tmp_path / "no", tls_auth_clients="no",
                                    tls_ca_cert_file="")).verify_mode == ssl.CERT_NONE


def test_an_encrypted_key_needs_its_password(tmp_path: Path) -> None:
    ca = Authority(tmp_path)
    locked = ca.issue("locked", password=b"s3cret")
    config = config_for(tmp_path / "c", tls_cert_file=str(locked.cert),
                        tls_key_file=str(locked.key))
    with pytest.raises(ConfigError, match="tls-key-file"):
        build_context(config)  # no prompt on the terminal: an error
    config.tls_key_file_pass = "s3cret"
    assert build_context(config).verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"tls_cert_file": ""}, "tls-cert-file or tls-key-file is not"),
    ({"tls_cert_file": "/nonexistent.crt"}, "No such file"),
    ({"tls_ca_cert_file": ""}, "Either tls-ca-cert-file or tls-ca-cert-dir must be specified"),
    ({"tls_ca_cert_file": "/nonexistent-ca.crt"}, "cannot load the CA certificates"),
    ({"tls_protocols": "TLSv1.2 SSLv3"}, "unknown protocol 'SSLv3'"),
    ({"tls_ciphers": "NO-SUCH-CIPHER"}, "no usable cipher"),
])
def test_bad_settings_are_errors(tmp_path: Path, overrides: dict[str, object],
                                 reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        build_context(config_for(tmp_path, **overrides))
