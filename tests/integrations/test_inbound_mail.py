"""The mail services' readers on their own: where an SNS certificate may come from, the form
reader's bounds, Mailgun's signature window and a token offered twice."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integrations.inbound_mail.forms import FormError, read_form
from integrations.inbound_mail.mailgun import TokenLedger, mailgun_signature, signed_by_mailgun
from integrations.inbound_mail.sns import trusted_url

NOW = datetime(2026, 3, 16, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.eu-west-3.amazonaws.com/?Action=ConfirmSubscription&Token=t",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
    ],
)
def test_sns_urls_on_an_sns_host_over_https_are_trusted(url: str) -> None:
    assert trusted_url(url, None)


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/cert.pem",  # not https
        "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com@evil.example/cert.pem",
        "https://user@sns.us-east-1.amazonaws.com/cert.pem",
        "https://s3.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
        "",
    ],
)
def test_any_other_url_is_not(url: str) -> None:
    assert not trusted_url(url, None)


def test_a_configured_base_url_replaces_the_sns_hosts() -> None:
    assert trusted_url("http://127.0.0.1:9000/cert.pem", "http://127.0.0.1:9000")
    assert not trusted_url("http://127.0.0.1:9001/cert.pem", "http://127.0.0.1:9000")
    assert not trusted_url("https://sns.us-east-1.amazonaws.com/c.pem", "http://127.0.0.1:9000")


def _multipart(count: int) -> tuple[bytes, str]:
    parts = b"".join(
        b'--B\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i for i in range(count)
    )
    return parts + b"--B--\r\n", "multipart/form-data; boundary=B"


def test_a_form_with_more_fields_than_the_bound_is_refused() -> None:
    body, kind = _multipart(11)
    with pytest.raises(FormError, match="more than 10 fields"):
        read_form(body, kind, max_fields=10)
    assert len(read_form(*_multipart(10), max_fields=10)) == 10
    with pytest.raises(FormError, match="more than 10 fields"):
        read_form(
            b"&".join(b"a%d=1" % i for i in range(11)), "application/x-www-form-urlencoded", 10
        )


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (
            b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\nv",
            "multipart/form-data; boundary=B",
        ),
        (b"no boundary here", "multipart/form-data; boundary=B"),
        (b"x", "multipart/form-data"),
        (b"{}", "application/json"),
    ],
)
def test_a_body_that_is_not_a_whole_form_is_refused(body: bytes, kind: str) -> None:
    with pytest.raises(FormError):
        read_form(body, kind)


def test_a_field_keeps_its_bytes_as_they_came() -> None:
    raw = b"Subject: caf\xe9\r\n\r\nbody with --B- inside\r\n"
    body = (
        b'--B\r\nContent-Disposition: form-data; name="body-mime"\r\n\r\n' + raw + b"\r\n--B--\r\n"
    )
    assert read_form(body, "multipart/form-data; boundary=B") == {"body-mime": raw}


def test_mailgun_signatures_hold_only_within_five_minutes_of_now() -> None:
    stamp = str(int(NOW.timestamp()))
    good = mailgun_signature("key", stamp, "tok")
    assert signed_by_mailgun("key", stamp, "tok", good, NOW)
    assert not signed_by_mailgun("other", stamp, "tok", good, NOW)
    late = str(int(NOW.timestamp()) - 301)
    assert not signed_by_mailgun("key", late, "tok", mailgun_signature("key", late, "tok"), NOW)
    assert not signed_by_mailgun("", stamp, "tok", mailgun_signature("", stamp, "tok"), NOW)


def test_a_token_is_accepted_once_and_the_ledger_stays_bounded() -> None:
    ledger = TokenLedger(capacity=3)
    assert ledger.first_use("a") and not ledger.first_use("a")
    for name in "bcde":
        assert ledger.first_use(name)
    assert len(ledger._seen) <= 3
