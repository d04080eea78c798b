"""Reading the message an SES receipt rule stored in S3: one `GET` of the object, signed with AWS
Signature Version 4 (sigv4.py), bounded in size and time.

The object's URL is virtual-hosted (https://<bucket>.s3.<region>.amazonaws.com/<key>), or
path-style on S3's regional host for a bucket whose name has a dot (its name would not match S3's
TLS certificate as a host). A base URL (S3_API_URL) replaces S3's hosts: path-style
(<base>/<bucket>/<key>), or virtual-hosted when it contains `{bucket}`.

A read that fails raises S3ReadFailed with the reason in words (what S3 answered and what to do
about it) and whether it is passing (5xx, a timeout, no connection) or lasting (403, 404, too
large)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx

from bot.core.settings import Settings
from integrations.inbound_mail import sigv4
from integrations.tls import http_client

BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+){1,4}")
TOPIC_REGION = re.compile(r"arn:aws[a-z-]*:sns:([a-z0-9-]+):")
# SNS waits 15 seconds for an answer; the read, and the reply pipeline after it, fit inside.
CONNECT_SECONDS = 3.0
READ_SECONDS = 8.0
ERROR_BODY_BYTES = 8 * 1024


class S3ReadFailed(Exception):
    """The object was not read; `reason` says why in words, `passing` whether trying again later
    may succeed."""

    def __init__(self, reason: str, *, passing: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.passing = passing


@dataclass(frozen=True)
class ObjectUrl:
    url: httpx.URL
    host: str  # the Host header as sent
    path: str  # encoded, as sent and signed


def region_of_topic(topic_arn: str) -> str | None:
    found = TOPIC_REGION.match(topic_arn)
    return found.group(1) if found else None


def object_url(base_url: str | None, bucket: str, key: str, region: str) -> ObjectUrl:
    if not BUCKET.fullmatch(bucket) or ".." in bucket:
        raise S3ReadFailed(f"{bucket!r} is not an S3 bucket name", passing=False)
    if not key:
        raise S3ReadFailed("the notification names no object key", passing=False)
    encoded_key = sigv4.encode_path(key)
    if base_url:
        base = base_url.rstrip("/")
        if "{bucket}" in base:
            text = f"{base.replace('{bucket}', bucket)}/{encoded_key}"
        else:
            text = f"{base}/{bucket}/{encoded_key}"
    elif "." in bucket:
        text = f"https://s3.{region}.amazonaws.com/{bucket}/{encoded_key}"
    else:
        text = f"https://{bucket}.s3.{region}.amazonaws.com/{encoded_key}"
    url = httpx.URL(text)
    host = url.host if url.port is None else f"{url.host}:{url.port}"
    return ObjectUrl(url, host, url.raw_path.decode("ascii"))


class S3Reader:
    """Reads objects with one set of credentials; `region` is the buckets' (else the topic's)."""

    def __init__(
        self,
        credentials: sigv4.Credentials,
        region: str | None,
        base_url: str | None,
        max_bytes: int,
        client: httpx.Client | None = None,
    ) -> None:
        self.credentials = credentials
        self.region = region
        self.base_url = base_url
        self.max_bytes = max_bytes
        self.client = client or http_client(
            timeout=httpx.Timeout(READ_SECONDS, connect=CONNECT_SECONDS)
        )

    def read(self, bucket: str, key: str, now: datetime, topic_arn: str = "") -> bytes:
        region = self.region or region_of_topic(topic_arn) or "us-east-1"
        if not REGION.fullmatch(region):
            raise S3ReadFailed(f"{region!r} is not an AWS region: set SES_S3_REGION", passing=False)
        where = object_url(self.base_url, bucket, key, region)
        headers = sigv4.signed_headers_for_get(
            self.credentials, where.host, where.path, region, now
        )
        headers.pop("host")  # httpx sends it, from the URL, as signed
        deadline = time.monotonic() + READ_SECONDS
        try:
            with self.client.stream(
                "GET", where.url, headers=headers, follow_redirects=False
            ) as answer:
                if answer.status_code != 200:
                    body = _first_bytes(answer, ERROR_BODY_BYTES, deadline)
                    raise S3ReadFailed(
                        _refusal(answer, body, bucket, key), passing=_passing(answer)
                    )
                declared = answer.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise self._too_large(int(declared))
                return _body(answer, self.max_bytes, deadline, self._too_large)
        except httpx.TimeoutException as exc:
            raise S3ReadFailed(
                f"S3 did not answer in time ({type(exc).__name__})", passing=True
            ) from exc
        except httpx.HTTPError as exc:
            raise S3ReadFailed(f"S3 could not be reached ({exc})", passing=True) from exc

    def _too_large(self, size: int) -> S3ReadFailed:
        return S3ReadFailed(
            f"the message is {size:,} bytes or more, over ARBOT_INBOUND_EMAIL_MAX_BYTES "
            f"({self.max_bytes:,})",
            passing=False,
        )


def _first_bytes(answer: httpx.Response, limit: int, deadline: float) -> bytes:
    data = bytearray()
    for chunk in answer.iter_bytes():
        data += chunk
        if len(data) >= limit or time.monotonic() > deadline:
            break
    return bytes(data[:limit])


def _body(
    answer: httpx.Response,
    limit: int,
    deadline: float,
    too_large: Callable[[int], S3ReadFailed],
) -> bytes:
    data = bytearray()
    for chunk in answer.iter_bytes():
        data += chunk
        if len(data) > limit:
            raise too_large(len(data))
        if time.monotonic() > deadline:
            raise S3ReadFailed(
                f"S3 sent the object too slowly (not all of it in {READ_SECONDS:.0f} s)",
                passing=True,
            )
    return bytes(data)


def _passing(answer: httpx.Response) -> bool:
    return answer.status_code >= 500 or answer.status_code in (408, 429)


def _error_field(body: bytes, name: str) -> str:
    found = re.search(rb"<" + name.encode() + rb">([^<]{0,300})</", body)
    return found.group(1).decode("utf-8", errors="replace").strip() if found else ""


def _refusal(answer: httpx.Response, body: bytes, bucket: str, key: str) -> str:
    """What S3 answered, in words, with what to do about it."""
    status = answer.status_code
    code = _error_field(body, "Code")
    said = f"S3 answered {status}" + (f" {code}" if code else "")
    message = _error_field(body, "Message")
    if message:
        said += f" ({message})"
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return f"{said}: check SES_S3_ACCESS_KEY_ID and SES_S3_SECRET_ACCESS_KEY"
    if code in ("ExpiredToken", "TokenRefreshRequired", "InvalidToken"):
        return f"{said}: the session token is no longer valid, renew SES_S3_SESSION_TOKEN"
    region = answer.headers.get("x-amz-bucket-region") or _error_field(body, "Region")
    if code in ("PermanentRedirect", "AuthorizationHeaderMalformed") or status in (301, 307):
        where = f" {region}" if region else " another region"
        return f"{said}: the bucket {bucket} is in{where}, set SES_S3_REGION to it"
    if status == 404 and code == "NoSuchBucket":
        return f"{said}: there is no bucket {bucket}; check the SES receipt rule's S3 action"
    if status == 404:
        return (
            f"{said}: bucket {bucket} has no object {key} (deleted, or expired by a lifecycle "
            "rule, before arbot read it)"
        )
    if status == 403:
        return (
            f"{said}: give the access key in SES_S3_ACCESS_KEY_ID s3:GetObject on "
            f"arn:aws:s3:::{bucket}/* (and kms:Decrypt when the bucket is encrypted with a KMS "
            "key); without s3:ListBucket S3 also answers 403 for an object that is not there"
        )
    if status >= 500:
        return f"{said}: S3 failed on its side"
    return said


def reader_from(settings: Settings) -> S3Reader | None:
    """The reader the settings describe; None when SES_S3_ACCESS_KEY_ID or its secret is unset."""
    secret = settings.ses_s3_secret_access_key
    if not settings.ses_s3_access_key_id or secret is None or not secret.get_secret_value():
        return None
    token = settings.ses_s3_session_token
    credentials = sigv4.Credentials(
        settings.ses_s3_access_key_id,
        secret.get_secret_value(),
        token.get_secret_value() if token is not None and token.get_secret_value() else None,
    )
    return S3Reader(
        credentials, settings.ses_s3_region, settings.s3_api_url, settings.inbound_email_max_bytes
    )
