"""Reply triage: the rules against a corpus of real-sounding replies (accuracy per label, and never
a dispute or an opt-out read as anything that could let reminders go on), promised dates read
relative to today, negations, quoted history, and what the confidence means."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import yaml

from bot.replies.triage import (
    RuleClassifier,
    classify,
    lets_reminders_continue,
    needs_person,
    own_words,
    promised_date,
)
from integrations.base.inbound import LABELS, Triage

CORPUS = Path(__file__).with_name("triage_corpus.yml")
MONDAY = date(2026, 3, 16)
STOPS_EVERYTHING = {"dispute", "opt_out"}


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    promise_date: date | None


@dataclass(frozen=True)
class Outcome:
    example: Example
    got: Triage

    @property
    def right(self) -> bool:
        return self.got.label == self.example.label


def load_corpus() -> tuple[date, list[Example]]:
    data = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    examples = [Example(r["text"], r["label"], r.get("promise_date")) for r in data["replies"]]
    return data["today"], examples


@pytest.fixture(scope="module")
def outcomes() -> list[Outcome]:
    today, examples = load_corpus()
    rules = RuleClassifier()
    return [Outcome(e, rules.classify(e.text, today)) for e in examples]


def accuracy_table(outcomes: list[Outcome]) -> str:
    seen = Counter(o.example.label for o in outcomes)
    right = Counter(o.example.label for o in outcomes if o.right)
    lines = [f"{'label':<22}{'n':>5}{'correct':>9}{'accuracy':>10}"]
    for label in LABELS:
        share = right[label] / seen[label] if seen[label] else 0.0
        lines.append(f"{label:<22}{seen[label]:>5}{right[label]:>9}{share:>10.1%}")
    total, correct = len(outcomes), sum(right.values())
    lines.append(f"{'all':<22}{total:>5}{correct:>9}{correct / total:>10.1%}")
    for o in outcomes:
        if not o.right:
            text = " ".join(o.example.text.split())[:70]
            lines.append(f"  expected {o.example.label}, got {o.got.label}: {text}")
    return "\n".join(lines)


def test_the_corpus_has_enough_replies_of_every_kind() -> None:
    today, examples = load_corpus()
    per_label = Counter(e.label for e in examples)
    assert today == MONDAY and today.weekday() == 0
    assert len(examples) >= 90
    assert set(per_label) == set(LABELS)
    for label in LABELS:
        assert per_label[label] >= (
            6 if label in STOPS_EVERYTHING | {"already_paid", "promise_to_pay"} else 5
        )


def test_the_rules_label_at_least_nine_replies_in_ten_right(
    outcomes: list[Outcome], capsys: pytest.CaptureFixture[str]
) -> None:
    table = accuracy_table(outcomes)
    with capsys.disabled():
        print("\nreply triage on tests/bot/replies/triage_corpus.yml\n" + table)

    correct = sum(o.right for o in outcomes)
    assert correct / len(outcomes) >= 0.90, table


def test_no_dispute_or_opt_out_is_ever_read_as_anything_else(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        if o.example.label in STOPS_EVERYTHING:
            assert o.got.label in STOPS_EVERYTHING, (o.example.text, o.got)
            assert not lets_reminders_continue(o.got.label)


def test_promised_dates_in_the_corpus_are_read_right(outcomes: list[Outcome]) -> None:
    promises = [o for o in outcomes if o.example.label == "promise_to_pay" and o.right]
    wrong = [(o.example.text, o.example.promise_date, o.got.promise_date) for o in promises]
    wrong = [w for w in wrong if w[1] != w[2]]
    assert not wrong


def test_every_confidence_is_between_zero_and_one_and_every_reason_is_said(
    outcomes: list[Outcome],
) -> None:
    for o in outcomes:
        assert 0.0 <= o.got.confidence <= 1.0
        assert o.got.reason
        assert o.got.promise_date is None or o.got.label == "promise_to_pay"


# --- Promised dates, read on Monday 16 March 2026 ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("we'll pay tomorrow", date(2026, 3, 17)),
        ("paying today", date(2026, 3, 16)),
        ("the day after tomorrow", date(2026, 3, 18)),
        ("next Friday", date(2026, 3, 27)),
        ("on Friday", date(2026, 3, 20)),
        ("by friday", date(2026, 3, 20)),
        ("this Thursday", date(2026, 3, 19)),
        ("on Monday", date(2026, 3, 23)),  # a weekday is never today
        ("Friday next week", date(2026, 3, 27)),
        ("by the 30th", date(2026, 3, 30)),
        ("30th", date(2026, 3, 30)),
        ("on the 16th", date(2026, 3, 16)),
        ("end of month", date(2026, 3, 31)),
        ("by the end of the month", date(2026, 3, 31)),
        ("month-end", date(2026, 3, 31)),
        ("end of next month", date(2026, 4, 30)),
        ("this week", date(2026, 3, 20)),
        ("end of the week", date(2026, 3, 20)),
        ("next week", date(2026, 3, 27)),
        ("in two weeks", date(2026, 3, 30)),
        ("in 10 days", date(2026, 3, 26)),
        ("in a couple of days", date(2026, 3, 18)),
        ("within 5 business days", date(2026, 3, 23)),
        ("in a month", date(2026, 4, 16)),
        ("March 30", date(2026, 3, 30)),
        ("Mar. 30th, 2026", date(2026, 3, 30)),
        ("30 March", date(2026, 3, 30)),
        ("the 30th of March", date(2026, 3, 30)),
        ("3/30", date(2026, 3, 30)),
        ("30/3", date(2026, 3, 30)),
        ("4/1/26", date(2026, 4, 1)),
        ("30.03.2026", date(2026, 3, 30)),
        ("2026-03-30", date(2026, 3, 30)),
        ("first of next month", date(2026, 4, 1)),
    ],
)
def test_each_phrasing_of_a_date_is_read_relative_to_today(text: str, expected: date) -> None:
    assert promised_date(text, MONDAY) == expected


def test_a_day_of_the_month_already_gone_is_next_months() -> None:
    assert promised_date("by the 5th", MONDAY) == date(2026, 4, 5)


def test_a_day_the_month_lacks_becomes_its_last_day() -> None:
    assert promised_date("by the 31st", date(2026, 4, 10)) == date(2026, 4, 30)
    assert promised_date("end of month", date(2026, 2, 10)) == date(2026, 2, 28)
    assert promised_date("in a month", date(2026, 1, 31)) == date(2026, 2, 28)


def test_relative_dates_roll_over_the_end_of_the_year() -> None:
    assert promised_date("in two weeks", date(2026, 12, 25)) == date(2027, 1, 8)
    assert promised_date("end of next month", date(2026, 12, 3)) == date(2027, 1, 31)
    assert promised_date("on the 5th", date(2026, 12, 20)) == date(2027, 1, 5)


def test_a_month_and_day_without_a_year_is_the_occurrence_nearest_today() -> None:
    assert promised_date("January 5", date(2026, 12, 20)) == date(2027, 1, 5)
    assert promised_date("1/5", date(2026, 12, 20)) == date(2027, 1, 5)


@pytest.mark.parametrize("text", ["March 2", "3/2", "2 March", "2025-12-01", "02.03.2026"])
def test_a_date_already_past_is_rejected_not_moved_a_year_ahead(text: str) -> None:
    assert promised_date(text, MONDAY) is None


def test_a_date_more_than_a_year_ahead_is_rejected() -> None:
    assert promised_date("2027-06-01", MONDAY) is None


def test_next_friday_said_on_a_friday_is_a_week_later_whatever_next_means() -> None:
    friday = date(2026, 3, 20)
    assert promised_date("next Friday", friday) == date(2026, 3, 27)
    assert promised_date("next Friday", friday, next_weekday="coming") == date(2026, 3, 27)
    assert promised_date("Friday", friday) == date(2026, 3, 27)


def test_next_friday_can_mean_the_coming_one() -> None:
    assert promised_date("next Friday", MONDAY, next_weekday="coming") == date(2026, 3, 20)
    rules = RuleClassifier(next_weekday="coming")
    assert rules.classify("We'll pay next Friday.", MONDAY).promise_date == date(2026, 3, 20)


def test_of_several_dates_the_one_beside_the_payment_wins() -> None:
    text = "I'm away until Thursday, but will pay next Friday."
    assert promised_date(text, MONDAY) == date(2026, 3, 27)
    assert promised_date("you will receive the funds by Tuesday 24th March", MONDAY) == date(
        2026, 3, 24
    )


@pytest.mark.parametrize("text", ["thanks", "pay $3.30 now", "INV-1030", "we paid 1/2 of it"])
def test_text_without_a_future_date_has_none(text: str) -> None:
    assert promised_date(text, MONDAY) is None


# --- Negations, precedence and leftovers -----------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "we have not paid yet",
        "We haven't paid this yet, sorry.",
        "It hasn't been paid, our AP is behind.",
        "we are yet to pay",
        "This will be paid on Friday.",
        "Once we get paid by our client we can settle up.",
        "I get paid on the 20th, so after that.",
        "It is to be paid in full by our head office.",
    ],
)
def test_not_having_paid_or_paying_later_is_no_claim_of_payment(text: str) -> None:
    assert classify(text, MONDAY).label != "already_paid"


@pytest.mark.parametrize(
    "text",
    [
        "Payment sent today via ACH",
        "ACH sent yesterday.",
        "Check mailed on Friday, #10452.",
        "Wire sent this morning, ref 4471.",
        "Payment made via our portal on the 12th.",
        "Funds transferred today, can you confirm you got them?",
        "ACH payment initiated 3/12",
    ],
)
def test_a_payment_said_to_have_gone_out_in_few_words_is_a_claim_of_payment(text: str) -> None:
    t = classify(text, MONDAY)
    assert t.label == "already_paid"
    assert t.confidence >= 0.6 and needs_person(t, min_confidence=0.6)


@pytest.mark.parametrize(
    "text",
    [
        "Payment sent by mail or online?",
        "Where should the payment be sent?",
        "Check made out to whom?",
        "No payment sent yet, sorry.",
        "Once payment made on our side I will let you know.",
        "Can I get the payment link sent again?",
        "Please check posted payments on your side.",
        "Payment sent to which address?",
    ],
)
def test_asking_about_a_payment_or_not_having_sent_it_is_no_claim_of_payment(text: str) -> None:
    assert classify(text, MONDAY).label != "already_paid"


def test_not_paid_yet_but_a_promise_is_a_promise_with_its_date() -> None:
    t = classify("We have not paid yet, but we will pay it by Friday.", MONDAY)
    assert (t.label, t.promise_date) == ("promise_to_pay", date(2026, 3, 20))


@pytest.mark.parametrize(
    "text",
    [
        "Please don't stop sending these, they help.",
        "do not stop the reminders",
        "I'll stop by your office with a check on Thursday.",
        "Payment stopped? No, it went through on the 12th.",
    ],
)
def test_stop_that_is_no_request_to_stop_is_no_opt_out(text: str) -> None:
    assert classify(text, MONDAY).label != "opt_out"


@pytest.mark.parametrize(
    "text",
    [
        "I am no longer with the company",
        "I'm no longer with Brightline Dental, sorry.",
        "She's no longer at the firm.",
        "Dana is no longer with Acme Corp; try ap@acme.example",
        "He is no longer here.",
        "I am no longer employed there.",
    ],
)
def test_a_contact_who_has_left_is_a_wrong_contact_a_person_handles(text: str) -> None:
    t = classify(text, MONDAY)
    assert t.label == "wrong_contact"
    assert t.confidence >= 0.6 and needs_person(t, min_confidence=0.6)
    assert not lets_reminders_continue(t.label)


@pytest.mark.parametrize(
    "text",
    [
        "We are no longer with that bank, so the autopay failed.",
        "It is no longer with our AP team, they approved it.",
        "I'm no longer with that bank, so autopay failed.",
    ],
)
def test_no_longer_with_a_bank_or_a_team_is_no_wrong_contact(text: str) -> None:
    assert classify(text, MONDAY).label != "wrong_contact"


@pytest.mark.parametrize(
    "text",
    [
        "We paid INV-1 but INV-2 is wrong",
        "Paid INV-1041 last week; INV-1042 is incorrect.",
        "We paid #1041 by ACH on the 2nd, #1042 looks wrong to us.",
    ],
)
def test_a_reply_that_pays_one_invoice_and_calls_another_wrong_keeps_the_dispute(
    text: str,
) -> None:
    t = classify(text, MONDAY)
    assert t.label == "dispute"
    assert "already_paid" in t.reason  # the payment claim is named for the person who reads it
    assert needs_person(t, min_confidence=0.6)


@pytest.mark.parametrize(
    "text",
    [
        "The amount is not wrong, we just need more time.",
        "INV-2 is not wrong, we paid it on the 2nd.",
    ],
)
def test_saying_an_amount_is_not_wrong_is_no_dispute(text: str) -> None:
    assert classify(text, MONDAY).label != "dispute"


def test_a_dispute_that_is_denied_is_no_dispute() -> None:
    t = classify("We don't dispute the invoice, we will pay on the 30th.", MONDAY)
    assert (t.label, t.promise_date) == ("promise_to_pay", date(2026, 3, 30))


def test_a_dispute_wins_over_a_promise_in_the_same_reply() -> None:
    t = classify("The invoice is wrong, we were overcharged. We'll pay Friday once fixed.", MONDAY)
    assert t.label == "dispute"
    assert t.promise_date is None
    assert "promise_to_pay" in t.reason


def test_an_opt_out_wins_over_a_promise_and_a_dispute_over_an_opt_out() -> None:
    assert classify("Unsubscribe me please, we'll pay next Friday.", MONDAY).label == "opt_out"
    assert classify("Stop emailing me, I dispute this invoice.", MONDAY).label == "dispute"


def test_a_payment_plan_request_wins_over_the_promise_it_carries() -> None:
    t = classify("We can pay $500 now and the rest on April 15.", MONDAY)
    assert t.label == "payment_plan_request"


def test_our_quoted_reminder_cannot_vote() -> None:
    text = (
        "Thanks, will pay on the 30th.\n\n"
        "On Mon, Mar 16, 2026 at 9:00 AM Acme <ar@acme.example> wrote:\n"
        "> If you have already paid, please disregard this message.\n"
        "> Reply STOP to opt out."
    )
    t = classify(text, MONDAY)
    assert (t.label, t.promise_date) == ("promise_to_pay", date(2026, 3, 30))


def test_leftover_quote_marks_and_signatures_are_cut() -> None:
    text = (
        "ok thanks\n> Your invoice is past due\n> STOP to opt out\n"
        "Best regards,\nDana\nIf you are not the intended recipient, delete this."
    )
    assert own_words(text) == "ok thanks"
    assert classify(text, MONDAY).label == "other"


def test_a_quote_header_split_over_two_lines_is_still_cut() -> None:
    text = "Paid yesterday.\n\nOn Mon, Mar 16, 2026 at 9:00 AM Acme Billing <ar@acme\n.example> wrote:\n> STOP"
    assert own_words(text) == "Paid yesterday."


@pytest.mark.parametrize(
    "keyword", ["STOP", "stop", " Stop. ", "UNSUBSCRIBE", "Cancel", "QUIT", "END"]
)
def test_the_sms_opt_out_keywords_are_opt_outs_for_sure(keyword: str) -> None:
    t = classify(keyword, MONDAY)
    assert t.label == "opt_out"
    assert t.confidence >= 0.95


# --- Confidence and what follows from a label -----------------------------------------------


def test_a_reply_no_rule_understands_is_other_and_needs_a_person() -> None:
    t = classify("Merci, je regarde ça avec mon associé.", MONDAY)
    assert t.label == "other"
    assert t.confidence < 0.6
    assert needs_person(t, min_confidence=0.6)
    assert "no rule matched" in t.reason


def test_mixed_signals_lower_the_confidence() -> None:
    clean = classify("We will pay on Friday.", MONDAY)
    mixed = classify("Money is tight, but we will pay on Friday.", MONDAY)
    assert clean.label == mixed.label == "promise_to_pay"
    assert mixed.confidence < clean.confidence


def test_a_dated_promise_goes_through_and_an_undated_one_waits_for_a_person() -> None:
    dated = classify("We will pay on Friday.", MONDAY)
    undated = classify("We will pay as soon as we can.", MONDAY)
    assert dated.confidence >= 0.6 and not needs_person(dated, 0.6)
    assert undated.promise_date is None and needs_person(undated, 0.6)


@pytest.mark.parametrize(
    "label", ["dispute", "hardship", "wrong_contact", "question", "already_paid"]
)
def test_labels_only_a_person_can_act_on_always_need_one(label: str) -> None:
    assert needs_person(Triage(label, 0.99, None, "test"), min_confidence=0.6)


def test_only_an_acknowledgement_lets_reminders_continue() -> None:
    assert [label for label in LABELS if lets_reminders_continue(label)] == ["other"]


def test_the_reason_names_the_rule_and_the_words_that_fired() -> None:
    t = classify("We were double billed for March.", MONDAY)
    assert t.label == "dispute"
    assert "billed twice" in t.reason and "double billed" in t.reason
