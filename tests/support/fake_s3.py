"""Amazon S3 for tests: a local server holding objects by bucket and key (path-style URLs:
/<bucket>/<key>), which checks each request's Signature Version 4 with the same secret (the
canonical request written out here, apart from arbot's) and answers as S3 documents: 200 with
the object, or an XML <Error> with 403 (AccessDenied, InvalidAccessKeyId,
SignatureDoesNotMatch), 404 (NoSuchKey, NoSuchBucket), 400 (AuthorizationHeaderMalformed, for
another region) or the 5xx a test asks for."""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from tests.support.fake_http import LocalServer

ACCESS_KEY_ID = "AKIAARBOTTESTKEY0001"
SECRET_ACCESS_KEY = "arbot/Test+Secret/Key0000000000000000000"
REGION = "us-east-1"
BUCKET = "ar-inbound-mail"
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]+)/(?P<day>\d{8})/(?P<region>[a-z0-9-]+)/s3/"
    r"aws4_request, SignedHeaders=(?P<names>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class FakeS3(LocalServer):
    def __init__(self, secret: str = SECRET_ACCESS_KEY) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.denied: set[tuple[str, str]] = set()  # objects the key may not read: 403
        self.failures: list[int] = []  # statuses to answer next, one a request (500, 503)
        self.requests: list[dict[str, str]] = []  # each request's path and headers
        self.holding = False  # answer nothing until `release` is set (a read that times out)
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                headers = {name.lower(): value for name, value in self.headers.items()}
                fake.requests.append({"path": self.path, **headers})
                if fake.holding:
                    fake.release.wait(timeout=30)
                status, code, body = fake.answer(self.path, headers, secret)
                if status != 200:
                    body = (
                        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
                        f"{code}</Code><Message>{escape(_MESSAGES.get(code, code))}</Message>"
                        f"<RequestId>4442587FB7D0A2F9</RequestId></Error>"
                    ).encode()
                self.send_response(status)
                self.send_header(
                    "Content-Type",
                    "application/xml" if status != 200 else "application/octet-stream",
                )
                self.send_header("Content-Length", str(len(body)))
                self.send_header("x-amz-request-id", "4442587FB7D0A2F9")
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler)

    def put(self, key: str, data: bytes, bucket: str = BUCKET) -> None:
        self.objects[(bucket, key)] = data

    def answer(self, path: str, headers: dict[str, str], secret: str) -> tuple[int, str, bytes]:
        if self.failures:
            status = self.failures.pop(0)
            return status, "SlowDown" if status == 503 else "InternalError", b""
        found = AUTHORIZATION.fullmatch(headers.get("authorization", ""))
        if found is None:
            return 403, "AccessDenied", b""
        if found["key"] != ACCESS_KEY_ID:
            return 403, "InvalidAccessKeyId", b""
        if found["region"] != REGION:
            return 400, "AuthorizationHeaderMalformed", b""
        names = found["names"].split(";")
        if not {"host", "x-amz-date", "x-amz-content-sha256"} <= set(names):
            return 403, "AccessDenied", b""
        if found["signature"] != _expected_signature(path, headers, names, found["day"], secret):
            return 403, "SignatureDoesNotMatch", b""
        bucket, _, key = path.lstrip("/").partition("/")
        bucket, key = unquote(bucket), unquote(key)
        if (bucket, key) in self.denied:
            return 403, "AccessDenied", b""
        if not any(b == bucket for b, _ in self.objects):
            return 404, "NoSuchBucket", b""
        if (bucket, key) not in self.objects:
            return 404, "NoSuchKey", b""
        return 200, "", self.objects[(bucket, key)]


def _expected_signature(
    path: str, headers: dict[str, str], names: list[str], day: str, secret: str
) -> str:
    canonical = "\n".join(
        [
            "GET",
            path.partition("?")[0],
            "",
            "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in names),
            ";".join(names),
            headers.get("x-amz-content-sha256", ""),
        ]
    )
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            headers.get("x-amz-date", ""),
            f"{day}/{REGION}/s3/aws4_request",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = ("AWS4" + secret).encode()
    for part in (day, REGION, "s3", "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


_MESSAGES = {
    "AccessDenied": "Access Denied",
    "InvalidAccessKeyId": "The AWS Access Key Id you provided does not exist in our records.",
    "SignatureDoesNotMatch": (
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method."
    ),
    "NoSuchKey": "The specified key does not exist.",
    "NoSuchBucket": "The specified bucket does not exist",
    "AuthorizationHeaderMalformed": (
        "The authorization header is malformed; the region is wrong; expecting 'us-east-1'"
    ),
    "InternalError": "We encountered an internal error. Please try again.",
    "SlowDown": "Please reduce your request rate.",
}
