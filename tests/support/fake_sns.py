"""Amazon SNS for tests: a signing key and self-signed certificate made here, a local server that
serves the certificate and records subscription confirmations, and messages signed as SNS signs
them (the canonical string written out here, apart from arbot's)."""

from __future__ import annotations

import base64
import functools
import json
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.support.fake_http import LocalServer

TOPIC = "arn:aws:sns:us-east-1:123456789012:arbot-inbound"
CERT_PATH = "/SimpleNotificationService-test.pem"


@functools.cache
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def certificate_pem() -> bytes:
    key = signing_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


class FakeSns(LocalServer):
    def __init__(self) -> None:
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                fake.requests.append(self.path)
                if self.path == CERT_PATH:
                    body, kind = certificate_pem(), "application/x-x509-ca-cert"
                else:
                    body, kind = b"<ConfirmSubscriptionResponse/>", "text/xml"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)

    @property
    def cert_url(self) -> str:
        return self.url + CERT_PATH


def signed(fields: dict[str, str], version: str = "1") -> dict[str, str]:
    """`fields` with SignatureVersion and Signature as SNS adds them."""
    if fields["Type"] == "Notification":
        names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    canonical = "".join(f"{n}\n{fields[n]}\n" for n in names if n in fields).encode()
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = signing_key().sign(canonical, padding.PKCS1v15(), digest)
    return {
        **fields,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
    }


def notification(
    message: str, cert_url: str, topic: str = TOPIC, version: str = "1", **extra: str
) -> dict[str, str]:
    fields = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic,
        "Message": message,
        "Timestamp": "2026-03-16T14:00:00.000Z",
        "SigningCertURL": cert_url,
        "UnsubscribeURL": cert_url.rsplit("/", 1)[0] + "/?Action=Unsubscribe",
        **extra,
    }
    return signed(fields, version)


def subscription_confirmation(base_url: str, cert_url: str, topic: str = TOPIC) -> dict[str, str]:
    token = uuid.uuid4().hex
    fields = {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": token,
        "TopicArn": topic,
        "Message": f"You have chosen to subscribe to the topic {topic}.",
        "SubscribeURL": f"{base_url}/?Action=ConfirmSubscription&TopicArn={topic}&Token={token}",
        "Timestamp": "2026-03-16T14:00:00.000Z",
        "SigningCertURL": cert_url,
    }
    return signed(fields, "2")


def ses_received(raw: bytes, encoding: str = "UTF8") -> str:
    """SES's notification of a received message, its content in it (an SNS action)."""
    content = base64.b64encode(raw).decode() if encoding == "BASE64" else raw.decode()
    return json.dumps(
        {
            "notificationType": "Received",
            "mail": {"source": "ap@ridgeline.example", "messageId": "ses-1"},
            "receipt": {
                "recipients": ["ar@brightwater.example"],
                "spamVerdict": {"status": "PASS"},
                "action": {"type": "SNS", "topicArn": TOPIC, "encoding": encoding},
            },
            "content": content,
        }
    )


def ses_stored_in_s3(bucket: str, key: str, subject: str = "") -> str:
    """SES's notification of a message its S3 action stored (no content; bucket and key)."""
    mail: dict[str, object] = {"source": "ap@ridgeline.example", "messageId": key}
    if subject:
        mail["commonHeaders"] = {"from": ["ap@ridgeline.example"], "subject": subject}
    return json.dumps(
        {
            "notificationType": "Received",
            "mail": mail,
            "receipt": {
                "recipients": ["ar@brightwater.example"],
                "action": {
                    "type": "S3",
                    "topicArn": TOPIC,
                    "bucketName": bucket,
                    "objectKeyPrefix": "",
                    "objectKey": key,
                },
            },
        }
    )
