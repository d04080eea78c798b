"""Amazon SNS messages posted to an HTTP(S) subscription: the JSON envelope, its signature
(SignatureVersion 1, RSA with SHA1; 2, RSA with SHA256) checked against the certificate at
SigningCertURL, which is fetched only from https://sns.<region>.amazonaws.com (or the base URL a
deployment names instead, for tests), and the subscription confirmed by a GET of SubscribeURL
from the same place."""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from integrations.tls import http_client

SNS_HOST = re.compile(r"sns\.[a-z0-9-]{3,}\.amazonaws\.com(\.cn)?")
MAX_CERTIFICATE_BYTES = 64 * 1024
FETCH_TIMEOUT_SECONDS = 10.0
CACHED_CERTIFICATES = 32
TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
# The fields each type signs, in the order they are signed (Subject only when present).
SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
SIGNED["UnsubscribeConfirmation"] = SIGNED["SubscriptionConfirmation"]
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


class NotFromSns(ValueError):
    """Not a message SNS signed for a topic we take; the message says why (for the log)."""


@dataclass(frozen=True)
class SnsMessage:
    type: str
    topic_arn: str
    message: str
    fields: dict[str, str]

    @property
    def subscribe_url(self) -> str:
        return self.fields.get("SubscribeURL", "")


def envelope(body: bytes) -> SnsMessage:
    """The envelope's fields; NotFromSns when the body is not one."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise NotFromSns("the body is not JSON") from exc
    if not isinstance(document, dict) or document.get("Type") not in TYPES:
        raise NotFromSns("the body is not an SNS message (its Type is not one SNS sends)")
    fields = {k: v for k, v in document.items() if isinstance(k, str) and isinstance(v, str)}
    return SnsMessage(fields["Type"], fields.get("TopicArn", ""), fields.get("Message", ""), fields)


def string_to_sign(message: SnsMessage) -> bytes:
    lines = []
    for name in SIGNED[message.type]:
        if name not in message.fields:
            if name == "Subject":
                continue
            raise NotFromSns(f"the message has no {name}")
        lines.append(f"{name}\n{message.fields[name]}\n")
    return "".join(lines).encode("utf-8")


def trusted_url(url: str, base_url: str | None) -> bool:
    """An https URL on an SNS host; or, when a base URL is configured, one under it."""
    if base_url:
        return url.startswith(base_url.rstrip("/") + "/")
    parts = urlsplit(url)
    return (
        parts.scheme == "https"
        and parts.port in (None, 443)
        and not parts.username
        and SNS_HOST.fullmatch(parts.hostname or "") is not None
    )


class SnsVerifier:
    """Checks SNS signatures; the certificates it fetched are kept (a few, by URL). Its HTTP
    client is made at the first fetch: making one loads the CA bundle (tens of milliseconds),
    which an app that never hears from SNS would pay at every start."""

    def __init__(self, base_url: str | None, client: httpx.Client | None = None) -> None:
        self.base_url = base_url
        self._client = client
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = http_client(timeout=FETCH_TIMEOUT_SECONDS)
            return self._client

    def verify(self, message: SnsMessage, now: datetime) -> None:
        """Returns when SNS signed `message`; NotFromSns otherwise."""
        version = message.fields.get("SignatureVersion", "")
        if version not in HASHES:
            raise NotFromSns(f"SignatureVersion {version!r} is not 1 or 2")
        url = message.fields.get("SigningCertURL", "")
        if not trusted_url(url, self.base_url):
            raise NotFromSns("SigningCertURL is not an https URL of sns.<region>.amazonaws.com")
        try:
            signature = base64.b64decode(message.fields.get("Signature", ""), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise NotFromSns("the Signature is not base64") from exc
        signed = string_to_sign(message)
        key = self._key(url, now)
        try:
            key.verify(signature, signed, padding.PKCS1v15(), HASHES[version]())
        except InvalidSignature as exc:
            raise NotFromSns("the signature does not match the message") from exc

    def confirm(self, message: SnsMessage) -> None:
        """Confirm a subscription by a GET of its SubscribeURL (only from SNS's own host)."""
        url = message.subscribe_url
        if not trusted_url(url, self.base_url):
            raise NotFromSns("SubscribeURL is not an https URL of sns.<region>.amazonaws.com")
        answer = self.client.get(url, follow_redirects=False)
        answer.raise_for_status()

    def _key(self, url: str, now: datetime) -> rsa.RSAPublicKey:
        with self._lock:
            key = self._keys.get(url)
        if key is None:
            key = self._fetch(url, now)
            with self._lock:
                if len(self._keys) >= CACHED_CERTIFICATES:
                    self._keys.pop(next(iter(self._keys)))
                self._keys[url] = key
        return key

    def _fetch(self, url: str, now: datetime) -> rsa.RSAPublicKey:
        try:
            answer = self.client.get(url, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise NotFromSns(f"the signing certificate could not be fetched ({exc})") from exc
        if answer.status_code != 200 or len(answer.content) > MAX_CERTIFICATE_BYTES:
            raise NotFromSns(f"the signing certificate could not be fetched ({answer.status_code})")
        try:
            certificate = x509.load_pem_x509_certificate(answer.content)
        except ValueError as exc:
            raise NotFromSns("the signing certificate is not a PEM certificate") from exc
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise NotFromSns("the signing certificate is not valid now")
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise NotFromSns("the signing certificate's key is not RSA")
        return key


def fields_of(message: SnsMessage) -> dict[str, Any]:
    """The notification's Message as JSON (SES puts its notification there); {} when it is not
    an object."""
    try:
        document = json.loads(message.message)
    except (ValueError, RecursionError):
        return {}
    return document if isinstance(document, dict) else {}
