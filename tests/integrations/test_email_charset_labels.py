# ruff: noqa: RUF001, RUF002  (words in other alphabets and typographic marks are the point here)
"""A reply whose charset label names a narrower encoding than its bytes: mail clients write
Windows code pages under the ISO and national names they extend (ISO-8859-1 for windows-1252,
Shift_JIS for Windows-31J, ks_c_5601-1987 for Unified Hangul, GB2312 for GBK). Read strictly,
the customer's apostrophes, euro signs, ㈱ or Hangul become control characters or U+FFFD, and
"we don’t owe this" is no longer a dispute."""

from __future__ import annotations

from datetime import date

import pytest

from bot.replies.triage import classify
from integrations.email_in import parse


def _reply(charset: str, body: bytes, subject: str = "Re: Invoice INV-1") -> bytes:
    head = (
        "From: Jane <jane@northwind.example>\r\nTo: ar@books.example.com\r\n"
        f"Subject: {subject}\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return head.encode("ascii") + body


@pytest.mark.parametrize(
    ("label", "codec", "written"),
    [
        ("iso-8859-1", "cp1252", "We don’t owe this – the €1,200 is wrong."),
        ("ISO_8859-1", "cp1252", "Paid on Friday… “INV-1”"),
        ("iso-8859-9", "cp1254", "Ödeme yapıldı – “INV-1”"),
        ("Shift_JIS", "cp932", "㈱山田商事です。①の請求書は支払い済みです。"),
        ("ks_c_5601-1987", "cp949", "똠방각하 결제했습니다"),
        ("euc-kr", "cp949", "똠방각하 결제했습니다"),
        ("gb2312", "gb18030", "镕基公司 已付款"),
        ("big5", "big5hkscs", "已付款，唔該晒：咗"),
        ("windows-874", "cp874", "ชำระเงินแล้ว"),
        ("tis-620", "cp874", "ชำระเงินแล้ว – ขอบคุณ"),
    ],
)
def test_a_reply_in_the_code_page_its_label_stands_for_reads_as_written(
    label: str, codec: str, written: str
) -> None:
    assert parse(_reply(label, written.encode(codec))).text == written


def test_a_dispute_written_with_windows_apostrophes_under_a_latin_1_label_is_a_dispute() -> None:
    mail = parse(_reply("iso-8859-1", "We don’t owe this. Please don’t email me.".encode("cp1252")))

    assert classify(mail.text, date(2026, 3, 16)).label == "dispute"


def test_an_encoded_word_in_the_code_page_its_label_stands_for_reads_as_written() -> None:
    raw = _reply("utf-8", b"ok", subject="=?iso-8859-1?Q?Re=3A_We_don=92t_owe_=80100?=")

    assert parse(raw).subject == "Re: We don’t owe €100"


@pytest.mark.parametrize(
    ("label", "body", "expected"),
    [
        ("us-ascii", "Payé".encode(), "Payé"),  # mislabelled UTF-8 stays UTF-8
        ("us-ascii", "Pay’d".encode("cp1252"), "Pay’d"),  # then the Windows code page
        ("iso-8859-1", "Payé".encode("latin-1"), "Payé"),
        ("iso-8859-1", b"Pay\x81", "Pay\x81"),  # a byte windows-1252 leaves out: as labelled
        ("shift_jis", "支払い済み".encode("shift_jis"), "支払い済み"),
        ("utf-8", "Payé".encode("latin-1"), "Pay\ufffd"),  # an explicit UTF-8 label is kept
    ],
)
def test_text_that_fits_its_label_reads_as_before(label: str, body: bytes, expected: str) -> None:
    assert parse(_reply(label, body)).text == expected
