"""Polling a mailbox over IMAP (TLS, on loopback): each message is handled once, a refusal or a
crash leaves it for the next poll, and a bad setting is named in the error."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from integrations.email_in import parse
from integrations.imap_in import ImapError, PollReport, poll
from tests.support import MAIL_SAMPLES
from tests.support.fake_imap import PASSWORD, USER, FakeImap

SAMPLES = MAIL_SAMPLES


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.eml").read_bytes()


@pytest.fixture
def imap() -> Iterator[FakeImap]:
    with FakeImap() as server:
        yield server


def poll_once(
    imap: FakeImap,
    handle: Callable[[bytes], bool],
    password: str = PASSWORD,
    folder: str = "INBOX",
    limit: int | None = None,
) -> PollReport:
    return poll(
        "127.0.0.1",
        imap.port,
        USER,
        password,
        folder,
        handle,
        ssl_context=imap.client_context(),
        timeout=5,
        limit=limit,
    )


class Recorder:
    """A handler that keeps what it was given and answers from a list (True by default)."""

    def __init__(self, answers: list[bool] | None = None) -> None:
        self.received: list[bytes] = []
        self.answers = answers or []

    def __call__(self, raw: bytes) -> bool:
        self.received.append(raw)
        return self.answers.pop(0) if self.answers else True


class Crash(BaseException):
    """The process dying in the middle of handling a message."""


def test_each_unseen_message_is_handled_once_and_marked_seen(imap: FakeImap) -> None:
    reply = imap.mailbox.add(sample("gmail_reply"))
    bounce = imap.mailbox.add(sample("dsn_bounce"))
    imap.mailbox.add(sample("no_match"), seen=True)  # read by a person already
    handler = Recorder()

    first = poll_once(imap, handler)
    second = poll_once(imap, handler)

    assert handler.received == [sample("gmail_reply"), sample("dsn_bounce")]
    assert first == PollReport(fetched=2, handled=2, left=0, errors=[])
    assert second == PollReport(fetched=0, handled=0, left=0, errors=[])
    assert imap.mailbox.seen(reply) and imap.mailbox.seen(bounce)
    assert imap.mailbox.count("UID FETCH") == 2
    assert imap.mailbox.count("LOGOUT") == 2


def test_fetching_uses_peek_so_only_an_accepted_message_becomes_seen(imap: FakeImap) -> None:
    uid = imap.mailbox.add(sample("gmail_reply"))

    poll_once(imap, Recorder([False]))

    fetches = [c for c in imap.mailbox.commands if c.startswith("UID FETCH")]
    assert fetches == [f"UID FETCH {uid} (BODY.PEEK[])"]
    assert not imap.mailbox.seen(uid)
    assert imap.mailbox.count("UID STORE") == 0


def test_a_message_the_handler_refuses_is_left_for_the_next_poll(imap: FakeImap) -> None:
    uid = imap.mailbox.add(sample("iphone_reply"))
    handler = Recorder([False, True])

    first = poll_once(imap, handler)
    assert (first.fetched, first.handled, first.left) == (1, 0, 1)
    assert not imap.mailbox.seen(uid)

    second = poll_once(imap, handler)
    assert (second.fetched, second.handled, second.left) == (1, 1, 0)
    assert imap.mailbox.seen(uid)
    assert handler.received == [sample("iphone_reply")] * 2


def test_a_crash_mid_poll_leaves_the_unfinished_messages_for_the_next_poll(
    imap: FakeImap,
) -> None:
    done, crashed, untouched = (
        imap.mailbox.add(sample(name)) for name in ("gmail_reply", "outlook_reply", "base64_utf8")
    )
    calls: list[bytes] = []

    def dies_on_the_second(raw: bytes) -> bool:
        calls.append(raw)
        if len(calls) == 2:
            raise Crash
        return True

    with pytest.raises(Crash):
        poll_once(imap, dies_on_the_second)

    assert imap.mailbox.seen(done)
    assert imap.mailbox.unseen_uids() == [crashed, untouched]
    assert imap.mailbox.count("LOGOUT") == 1  # the session still ended properly

    handler = Recorder()
    report = poll_once(imap, handler)
    assert handler.received == [sample("outlook_reply"), sample("base64_utf8")]
    assert (report.handled, report.left) == (2, 0)


def test_a_handler_error_is_reported_and_the_other_messages_still_go(imap: FakeImap) -> None:
    bad = imap.mailbox.add(b"Subject: poison\r\n\r\nx")
    good = imap.mailbox.add(sample("gmail_reply"))

    def handle(raw: bytes) -> bool:
        if b"poison" in raw:
            raise RuntimeError("database is locked")
        return True

    report = poll_once(imap, handle)

    assert (report.fetched, report.handled, report.left) == (2, 1, 1)
    assert report.errors == [f"message UID {bad}: RuntimeError: database is locked"]
    assert imap.mailbox.seen(good) and not imap.mailbox.seen(bad)


def test_a_limit_takes_the_oldest_and_leaves_the_rest(imap: FakeImap) -> None:
    uids = [imap.mailbox.add(sample(n)) for n in ("gmail_reply", "iphone_reply", "no_match")]

    report = poll_once(imap, Recorder(), limit=2)

    assert (report.fetched, report.handled, report.left) == (2, 2, 1)
    assert imap.mailbox.unseen_uids() == [uids[2]]


def test_a_refused_seen_flag_is_reported_and_the_message_counts_as_left(imap: FakeImap) -> None:
    uid = imap.mailbox.add(sample("gmail_reply"))
    imap.refuse_store = True

    report = poll_once(imap, Recorder())

    assert (report.handled, report.left) == (1, 1)
    assert "could not be marked \\Seen" in report.errors[0]
    assert not imap.mailbox.seen(uid)


def test_polling_and_parsing_together_sort_replies_from_machines(imap: FakeImap) -> None:
    for name in ("gmail_reply", "out_of_office_auto_submitted", "dsn_bounce", "html_only_reply"):
        imap.mailbox.add(sample(name))
    people: list[str] = []
    machines: list[str] = []

    def handle(raw: bytes) -> bool:
        message = parse(raw)
        (machines if message.automatic else people).append(message.sender)
        return True

    poll_once(imap, handle)

    assert people == ["jane.doe@northwind.example", "lena.fischer@fischer-soehne.example"]
    assert machines == ["jane.doe@northwind.example", "mailer-daemon@mail.example.com"]


def test_a_folder_name_with_spaces_and_accents_is_quoted_and_encoded() -> None:
    with FakeImap(folder="Kunden &- Antworten Eing&AOQ-nge") as imap:
        imap.mailbox.add(sample("gmail_reply"))

        report = poll_once(imap, Recorder(), folder="Kunden & Antworten Eingänge")

    assert report.handled == 1


def test_a_wrong_password_names_the_settings_to_fix_and_fetches_nothing(imap: FakeImap) -> None:
    imap.mailbox.add(sample("gmail_reply"))

    with pytest.raises(ImapError, match="check IMAP_USER and IMAP_PASSWORD") as error:
        poll_once(imap, Recorder(), password="not-the-password")

    assert "AUTHENTICATIONFAILED" in str(error.value)
    assert "not-the-password" not in str(error.value)
    assert imap.mailbox.count("UID FETCH") == 0
    assert imap.mailbox.count("LOGOUT") == 1


def test_a_missing_folder_names_imap_folder(imap: FakeImap) -> None:
    with pytest.raises(ImapError, match=r"'Replies' cannot be opened .*check IMAP_FOLDER"):
        poll_once(imap, Recorder(), folder="Replies")
    assert imap.mailbox.count("LOGOUT") == 1


def test_a_refused_connection_names_imap_host_and_port() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connecting is refused
        port = unused.getsockname()[1]
        with pytest.raises(ImapError, match=f"127.0.0.1:{port} .*check IMAP_HOST and IMAP_PORT"):
            poll("127.0.0.1", port, USER, PASSWORD, "INBOX", Recorder(), timeout=5)


def test_an_untrusted_certificate_is_refused_and_names_imap_ca_file(imap: FakeImap) -> None:
    imap.mailbox.add(sample("gmail_reply"))

    with pytest.raises(ImapError, match=r"not trusted .*IMAP_CA_FILE"):
        poll("127.0.0.1", imap.port, USER, PASSWORD, "INBOX", Recorder(), timeout=5)

    assert imap.mailbox.commands == []  # not even the password was sent
