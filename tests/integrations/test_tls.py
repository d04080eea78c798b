"""Outbound HTTPS clients share one certificate store, and still follow SSL_CERT_FILE."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from integrations.tls import http_client, verified_tls

TLS = Path(__file__).parents[1] / "support" / "tls"


def test_clients_share_one_context_that_checks_certificates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    context = verified_tls()

    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert verified_tls() is context
    with http_client(timeout=5) as one, http_client(timeout=5) as other:
        pools = [c._transport._pool for c in (one, other)]  # type: ignore[attr-defined]
        assert all(pool._ssl_context is context for pool in pools)


def test_a_certificate_file_set_in_the_environment_gets_a_context_trusting_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    default = verified_tls()
    monkeypatch.setenv("SSL_CERT_FILE", str(TLS / "cert.pem"))

    own = verified_tls()

    assert own is not default
    assert len(own.get_ca_certs()) == 1 < len(default.get_ca_certs())
