"""AWS Signature Version 4 for a request without a body (what reading an S3 object takes), as
AWS documents it: a canonical request (method, URI, query, headers, signed header names, payload
hash), a string to sign (algorithm, time, credential scope, the canonical request's SHA-256), a
signing key made by HMAC-SHA256 from the secret through date, region, service and
"aws4_request", and the Authorization header naming all of it.

S3 encodes the path once (each byte but A-Z a-z 0-9 - . _ ~ and the slashes between segments),
where other services encode it twice; the caller passes the path already encoded as it is sent."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_PAYLOAD_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


def encode_path(path: str) -> str:
    """A path (an S3 key after its leading slash) as S3's canonical URI wants it: each segment
    percent-encoded as UTF-8, the slashes kept."""
    return quote(path, safe="/~")


def amz_date(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ")


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    payload_sha256: str,
) -> tuple[str, str]:
    """The canonical request and its signed header names (`host;x-amz-date`...). `path` is as
    sent (already encoded); `query` is the canonical query string ('' for none)."""
    names = sorted(name.lower() for name in headers)
    values = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    canonical_headers = "".join(f"{name}:{values[name]}\n" for name in names)
    signed_headers = ";".join(names)
    request = "\n".join(
        (method, path or "/", query, canonical_headers, signed_headers, payload_sha256)
    )
    return request, signed_headers


def scope(day: str, region: str, service: str) -> str:
    return f"{day}/{region}/{service}/aws4_request"


def string_to_sign(request: str, when: str, credential_scope: str) -> str:
    digest = hashlib.sha256(request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{when}\n{credential_scope}\n{digest}"


def signing_key(secret_access_key: str, day: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret_access_key).encode("utf-8")
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def signature(key: bytes, to_sign: str) -> str:
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def signed_headers_for_get(
    credentials: Credentials,
    host: str,
    path: str,
    region: str,
    now: datetime,
    service: str = "s3",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The headers a GET of `path` on `host` carries, Authorization included. `host` is the
    Host header as sent (with its port when it is not the scheme's default)."""
    when = amz_date(now)
    headers = {
        "host": host,
        "x-amz-content-sha256": EMPTY_PAYLOAD_SHA256,
        "x-amz-date": when,
        **{name.lower(): value for name, value in (extra or {}).items()},
    }
    if credentials.session_token:
        headers["x-amz-security-token"] = credentials.session_token
    request, names = canonical_request("GET", path, "", headers, EMPTY_PAYLOAD_SHA256)
    credential_scope = scope(when[:8], region, service)
    key = signing_key(credentials.secret_access_key, when[:8], region, service)
    headers["authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{credential_scope}, "
        f"SignedHeaders={names}, Signature={signature(key, string_to_sign(request, when, credential_scope))}"
    )
    return headers
