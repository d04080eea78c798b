"""Reading an object from S3 with our Signature Version 4 signer: AWS's published examples as
known answers, the object's URL (virtual-hosted, path-style, a base URL), and reads from a local
S3 that checks each signature, fails and stalls as S3 can."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from integrations.inbound_mail import s3, sigv4
from tests.support import fake_s3

NOW = datetime(2026, 3, 16, 14, 0, tzinfo=UTC)


# AWS's example of a signed GET Object (Amazon S3 API Reference, "Signature Calculations for the
# Authorization Header", GET Object with a Range header), and of deriving a signing key (AWS
# General Reference, "Examples of how to derive a signing key for Signature Version 4").
S3_EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_the_signer_gives_aws_published_values_for_its_s3_get_object_example() -> None:
    headers = {
        "Host": "examplebucket.s3.amazonaws.com",
        "Range": "bytes=0-9",
        "x-amz-content-sha256": sigv4.EMPTY_PAYLOAD_SHA256,
        "x-amz-date": "20130524T000000Z",
    }
    request, names = sigv4.canonical_request(
        "GET", "/test.txt", "", headers, sigv4.EMPTY_PAYLOAD_SHA256
    )
    assert names == "host;range;x-amz-content-sha256;x-amz-date"
    assert hashlib.sha256(request.encode()).hexdigest() == (
        "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
    )
    signed = sigv4.signed_headers_for_get(
        sigv4.Credentials("AKIAIOSFODNN7EXAMPLE", S3_EXAMPLE_SECRET),
        "examplebucket.s3.amazonaws.com",
        "/test.txt",
        "us-east-1",
        datetime(2013, 5, 24, tzinfo=UTC),
        extra={"Range": "bytes=0-9"},
    )
    assert signed["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_the_signing_key_is_aws_published_example() -> None:
    key = sigv4.signing_key(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam"
    )
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_a_session_token_is_sent_and_signed() -> None:
    credentials = sigv4.Credentials("AKIDEXAMPLE", "secret", session_token="FwoGZXIvYXdz")
    signed = sigv4.signed_headers_for_get(credentials, "b.s3.amazonaws.com", "/k", "eu-west-1", NOW)
    assert signed["x-amz-security-token"] == "FwoGZXIvYXdz"
    assert (
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"
        in (signed["authorization"])
    )


@pytest.mark.parametrize(
    ("base", "bucket", "key", "url", "path"),
    [
        (None, "ar-mail", "in/a b+c", "https://ar-mail.s3.eu-west-1.amazonaws.com/in/a%20b%2Bc",
         "/in/a%20b%2Bc"),
        (None, "ar.mail.example", "k", "https://s3.eu-west-1.amazonaws.com/ar.mail.example/k",
         "/ar.mail.example/k"),
        ("http://127.0.0.1:9000/", "ar-mail", "é~x", "http://127.0.0.1:9000/ar-mail/%C3%A9~x",
         "/ar-mail/%C3%A9~x"),
        ("https://{bucket}.storage.example", "ar-mail", "k",
         "https://ar-mail.storage.example/k", "/k"),
    ],
)  # fmt: skip
def test_the_object_url_is_virtual_hosted_or_path_style_and_the_key_encoded_once(
    base: str | None, bucket: str, key: str, url: str, path: str
) -> None:
    where = s3.object_url(base, bucket, key, "eu-west-1")
    assert str(where.url) == url
    assert where.path == path
    assert where.host == httpx.URL(url).netloc.decode()


@pytest.mark.parametrize("bucket", ["Evil.example/", "a", "x..y", "attacker.example:80@b"])
def test_a_name_that_is_not_a_bucket_s_is_refused_before_any_request(bucket: str) -> None:
    with pytest.raises(s3.S3ReadFailed) as failed:
        s3.object_url(None, bucket, "k", "us-east-1")
    assert not failed.value.passing


def test_the_region_defaults_to_the_sns_topic_s() -> None:
    assert s3.region_of_topic("arn:aws:sns:eu-central-1:123456789012:inbound") == "eu-central-1"
    assert s3.region_of_topic("not an arn") is None


@pytest.fixture
def server() -> Iterator[fake_s3.FakeS3]:
    fake = fake_s3.FakeS3().start()
    yield fake
    fake.release.set()
    fake.stop()


def reader(
    server: fake_s3.FakeS3,
    secret: str = fake_s3.SECRET_ACCESS_KEY,
    region: str | None = None,
    max_bytes: int = 1024 * 1024,
    client: httpx.Client | None = None,
) -> s3.S3Reader:
    credentials = sigv4.Credentials(fake_s3.ACCESS_KEY_ID, secret)
    return s3.S3Reader(credentials, region, server.url, max_bytes, client)


TOPIC = "arn:aws:sns:us-east-1:123456789012:arbot-inbound"


def test_an_object_whose_key_needs_encoding_is_read_with_a_signature_s3_accepts(
    server: fake_s3.FakeS3,
) -> None:
    server.put("inbound/Re: facture n°42 +1", b"Subject: hello\r\n\r\nbody")
    data = reader(server).read(fake_s3.BUCKET, "inbound/Re: facture n°42 +1", NOW, TOPIC)
    assert data == b"Subject: hello\r\n\r\nbody"


def test_a_signature_with_another_secret_is_refused_saying_which_settings_to_check(
    server: fake_s3.FakeS3,
) -> None:
    server.put("k", b"x")
    with pytest.raises(s3.S3ReadFailed) as failed:
        reader(server, secret="another").read(fake_s3.BUCKET, "k", NOW, TOPIC)
    assert "403 SignatureDoesNotMatch" in failed.value.reason
    assert "SES_S3_SECRET_ACCESS_KEY" in failed.value.reason and not failed.value.passing


def test_a_bucket_in_another_region_says_to_set_the_region(server: fake_s3.FakeS3) -> None:
    server.put("k", b"x")
    with pytest.raises(s3.S3ReadFailed) as failed:
        reader(server, region="eu-west-1").read(fake_s3.BUCKET, "k", NOW, TOPIC)
    assert "SES_S3_REGION" in failed.value.reason and not failed.value.passing


def test_an_object_over_the_limit_is_refused_not_read_whole(server: fake_s3.FakeS3) -> None:
    server.put("big", b"x" * 200_000)
    with pytest.raises(s3.S3ReadFailed) as failed:
        reader(server, max_bytes=100_000).read(fake_s3.BUCKET, "big", NOW, TOPIC)
    assert "ARBOT_INBOUND_EMAIL_MAX_BYTES" in failed.value.reason and not failed.value.passing


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_is_a_passing_failure(server: fake_s3.FakeS3, status: int) -> None:
    server.put("k", b"x")
    server.failures.append(status)
    with pytest.raises(s3.S3ReadFailed) as failed:
        reader(server).read(fake_s3.BUCKET, "k", NOW, TOPIC)
    assert failed.value.passing and f"S3 answered {status}" in failed.value.reason


def test_s3_that_does_not_answer_in_time_is_a_passing_failure(server: fake_s3.FakeS3) -> None:
    server.put("k", b"x")
    server.holding = True
    with httpx.Client(timeout=0.2) as client, pytest.raises(s3.S3ReadFailed) as failed:
        reader(server, client=client).read(fake_s3.BUCKET, "k", NOW, TOPIC)
    assert failed.value.passing and "in time" in failed.value.reason


def test_s3_that_cannot_be_reached_is_a_passing_failure(server: fake_s3.FakeS3) -> None:
    url = server.url
    server.stop()
    gone = s3.S3Reader(sigv4.Credentials("k", "s"), None, url, 1024)
    with pytest.raises(s3.S3ReadFailed) as failed:
        gone.read(fake_s3.BUCKET, "k", NOW, TOPIC)
    assert failed.value.passing
