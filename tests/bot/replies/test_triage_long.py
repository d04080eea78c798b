"""Reply triage on a long reply: the rules read a bounded part of it, whatever its size, and an
opt-out or a dispute is found wherever it stands."""

from __future__ import annotations

import re
from datetime import date

import pytest

from bot.replies import triage
from bot.replies.triage import RuleClassifier, promised_date

MONDAY = date(2026, 3, 16)
SENTENCES = (
    "Our team met on the project plan and the office will review the schedule.",
    "The delivery window moved again because the warehouse was busy this season.",
    "Let me share the notes from the meeting with the rest of the group later.",
    "We are updating the handbook for new staff and the kitchen rota as well.",
)


def long_reply(chars: int) -> str:
    """Ordinary words that ask nothing of anyone, `chars` long."""
    block = " ".join(SENTENCES) + "\n" + "\n".join(SENTENCES) + "\n"
    return (block * (chars // len(block) + 1))[:chars]


@pytest.fixture
def chars_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The characters each rule is given to read."""
    read: list[int] = []
    fires = triage._fires

    def counting(rule: triage.Rule, text: str) -> re.Match[str] | None:
        read.append(len(text))
        return fires(rule, text)

    monkeypatch.setattr(triage, "_fires", counting)
    return read


def test_the_rules_read_no_more_of_a_reply_five_times_as_long(
    chars_read: list[int],
) -> None:
    RuleClassifier().classify(long_reply(200_000), MONDAY)
    shorter = sum(chars_read)
    chars_read.clear()
    RuleClassifier().classify(long_reply(1_000_000), MONDAY)
    assert sum(chars_read) <= shorter
    assert shorter < 40 * 200_000  # far less than every rule reading all of it


def test_an_opt_out_at_the_very_end_of_a_long_reply_is_found() -> None:
    got = RuleClassifier().classify(long_reply(400_000) + "\nPlease stop emailing me.", MONDAY)
    assert got.label == "opt_out"


@pytest.mark.parametrize(
    "words, label",
    [
        ("Unsubscribe me from these.", "opt_out"),
        ("Do not contact me again about this.", "opt_out"),
        ("We dispute invoice INV-7.", "dispute"),
        ("You overcharged us for the April visit.", "dispute"),
    ],
)
def test_an_opt_out_or_a_dispute_in_the_middle_of_a_long_reply_is_found(
    words: str, label: str
) -> None:
    text = long_reply(200_000) + "\n" + words + "\n" + long_reply(200_000)
    assert RuleClassifier().classify(text, MONDAY).label == label


def test_a_long_reply_says_what_was_read_and_goes_to_a_person() -> None:
    got = RuleClassifier().classify(long_reply(200_000) + "\nThanks, we will pay Friday.", MONDAY)
    assert got.label == "promise_to_pay"
    assert got.promise_date == date(2026, 3, 20)
    assert got.confidence <= 0.3
    assert "200,028 characters" in got.reason and "a person should read the rest" in got.reason
    nothing = RuleClassifier().classify(long_reply(200_000), MONDAY)
    assert (nothing.label, nothing.confidence) == ("other", 0.3)
    assert nothing.reason.startswith("no rule matched; a person should read it")


def test_a_short_reply_is_read_whole_and_its_reason_says_nothing_of_length() -> None:
    got = RuleClassifier().classify("Paid yesterday by wire.", MONDAY)
    assert got.label == "already_paid" and "characters" not in got.reason


def test_among_many_dates_the_one_nearest_a_payment_word_wins() -> None:
    filler = "The meeting is on Friday and the next on Monday. " * 2_000
    text = filler + "We will pay on March 20. " + filler
    assert promised_date(text, MONDAY) == date(2026, 3, 20)


def test_a_line_of_just_on_does_not_hide_the_quoted_reminder_after_it() -> None:
    reply = (
        "Got it, thanks\nOn\n"
        "On Mon, Mar 16, 2026 at 9:00 AM Acme AR <ar@acme.com> wrote:\n"
        "Invoice INV-1 for $400 is due. Reply STOP to opt out."
    )
    assert triage.own_words(reply) == "Got it, thanks\nOn"
    assert RuleClassifier().classify(reply, MONDAY).label != "opt_out"


def test_a_reply_of_ordinary_length_is_looked_at_line_by_line_however_many_lines() -> None:
    reply = (
        "Please see the list below.\n"
        + "- a\n" * (triage.MAY_END_LINES + 1)
        + "From: Acme AR <ar@acme.com>\nSent: Monday\nWe will pay on Friday.\n"
    )
    assert "We will pay on Friday" not in triage.own_words(reply)
    assert RuleClassifier().classify(reply, MONDAY).label != "promise_to_pay"


def test_a_reply_one_character_past_the_bound_is_said_to_be_long() -> None:
    reply = long_reply(2 * triage.READ_CHARS - 30) + "\nThanks, we will pay Friday."
    assert len(triage.own_words(reply)) == 2 * triage.READ_CHARS - 2
    longer = reply + "!!!"

    got = RuleClassifier().classify(longer, MONDAY)

    assert "a long reply" in got.reason and got.confidence <= 0.3


@pytest.mark.parametrize(
    "words",
    [
        "Take me off your list.",
        "Don't call this number again.",
        "Do not email this address.",
        "Never write to me again.",
        "I no longer want to receive these.",
        "I don't want these emails.",
        "Enough with the emails.",
        "I do not want to be contacted.",
        "We never received the parts.",
        "That charge was unauthorized.",
        "We are not happy with the work.",
        "We object to this invoice.",
        "We won't pay for the second visit.",
        "The pump was defective.",
    ],
)
def test_what_opts_out_or_disputes_alone_does_so_in_the_middle_of_a_long_reply(words: str) -> None:
    alone = RuleClassifier().classify(words, MONDAY).label
    assert alone in ("opt_out", "dispute")
    text = long_reply(200_000) + "\n" + words + "\n" + long_reply(200_000)
    assert RuleClassifier().classify(text, MONDAY).label == alone
