"""Outbound HTTPS clients sharing one certificate store.

Reading the certificate bundle into an SSL context takes 30 to 50 ms, and `httpx.Client()` does it
for every client it makes: a command that talks to Twilio, a CRM and a ledger paid it three times,
and the served app once per webhook that made a client. The context is made once per process and
shared, which SSL contexts allow. It checks certificates as httpx does by itself, against
SSL_CERT_FILE or SSL_CERT_DIR when set, else the certifi bundle; a change to either variable
gets a context of its own.
"""

from __future__ import annotations

import os
import ssl
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx


def verified_tls() -> ssl.SSLContext:
    """The process's context for checking servers' certificates."""
    return _context(os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", ""))


@cache
def _context(cert_file: str, cert_dir: str) -> ssl.SSLContext:
    del cert_file, cert_dir  # the cache's key: httpx reads both from the environment
    import httpx  # here, not at the top: importing this module stays free for `arbot --help`

    return httpx.create_ssl_context()


def http_client(**options: Any) -> httpx.Client:
    """`httpx.Client(**options)`, checking certificates with the shared context."""
    import httpx

    return httpx.Client(verify=verified_tls(), **options)
