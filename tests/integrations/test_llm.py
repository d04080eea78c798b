"""The optional model classifier against a local OpenAI-compatible server: its answer is used when
it validates, the rules decide on any failure, and only the customer's own words leave."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import date

import pytest
from pydantic import SecretStr

from bot.core.settings import Settings
from bot.replies.triage import RuleClassifier
from integrations.llm import LlmClassifier, classifier_from
from tests.support.fake_llm import FakeLlm

TODAY = date(2026, 3, 16)
KEY = "sk-test-123"
DISPUTE = "We never received the second shipment, so we won't be paying for it."
QUOTED_REMINDER = """Will pay Friday.

On Mon, Mar 16, 2026 at 9:00 AM Acme Billing <billing@acme.example> wrote:
> Hi Northwind Traders, invoice INV-7781 for $4,210.00 is 14 days past due."""


@pytest.fixture(scope="module")
def llm_server() -> Iterator[FakeLlm]:
    server = FakeLlm().start()
    yield server
    server.stop()


@pytest.fixture
def llm(llm_server: FakeLlm) -> FakeLlm:
    llm_server.reset()
    return llm_server


def classifier(llm: FakeLlm, timeout_seconds: float = 10.0) -> LlmClassifier:
    return LlmClassifier(
        llm.base_url, "triage-small", KEY, RuleClassifier(), timeout_seconds=timeout_seconds
    )


def test_a_valid_answer_is_used_with_its_confidence_and_promise_date(llm: FakeLlm) -> None:
    llm.answers(label="promise_to_pay", confidence=0.92, promise_date="2026-03-27")

    t = classifier(llm).classify("Friday week works for us.", TODAY)

    assert (t.label, t.confidence, t.promise_date) == ("promise_to_pay", 0.92, date(2026, 3, 27))
    assert "triage-small" in t.reason


def test_the_request_carries_the_model_the_bearer_key_and_the_json_format(llm: FakeLlm) -> None:
    llm.answers(label="other", confidence=0.8, promise_date=None)

    classifier(llm).classify("Thanks, received.", TODAY)

    (seen,) = llm.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.authorization == f"Bearer {KEY}"
    assert seen.body["model"] == "triage-small"
    assert seen.body["response_format"] == {"type": "json_object"}
    system, user = seen.body["messages"]
    assert system["role"] == "system" and "2026-03-16" in system["content"]
    assert user == {"role": "user", "content": "Thanks, received."}


def test_only_the_customers_own_words_are_sent_never_the_quoted_name_or_amount(
    llm: FakeLlm,
) -> None:
    llm.answers(label="promise_to_pay", confidence=0.9, promise_date="2026-03-20")

    classifier(llm).classify(QUOTED_REMINDER, TODAY)

    sent = json.dumps(llm.requests[0].body)
    assert llm.requests[0].body["messages"][1]["content"] == "Will pay Friday."
    assert "Northwind" not in sent and "4,210" not in sent and "INV-7781" not in sent


def test_without_a_key_no_authorization_header_is_sent(llm: FakeLlm) -> None:
    llm.answers(label="other", confidence=0.7)

    LlmClassifier(llm.base_url, "local", None, RuleClassifier()).classify("ok", TODAY)

    assert llm.requests[0].authorization is None


BROKEN_ANSWERS: dict[str, Callable[[FakeLlm], None]] = {
    "http 500": lambda llm: llm.fails(500),
    "http 429": lambda llm: llm.fails(429),
    "content is not json": lambda llm: llm.answers_text("Sure! The label is dispute."),
    "content is empty": lambda llm: llm.answers_text(None),
    "unknown label": lambda llm: llm.answers(label="angry", confidence=0.9),
    "confidence above 1": lambda llm: llm.answers(label="question", confidence=1.5),
    "confidence missing": lambda llm: llm.answers(label="question"),
    "date is not a date": lambda llm: llm.answers(
        label="promise_to_pay", confidence=0.9, promise_date="next Friday"
    ),
    "body is not json": lambda llm: llm.sends_raw(b"<html>Bad gateway</html>"),
    "body has no choices": lambda llm: llm.sends_raw(b'{"error": "overloaded"}'),
}


@pytest.mark.parametrize("breakage", BROKEN_ANSWERS.values(), ids=BROKEN_ANSWERS.keys())
def test_any_broken_answer_falls_back_to_the_rules_and_says_why(
    llm: FakeLlm, breakage: Callable[[FakeLlm], None], caplog: pytest.LogCaptureFixture
) -> None:
    breakage(llm)
    text = "We'll pay next Friday."

    with caplog.at_level(logging.WARNING, logger="integrations.llm"):
        t = classifier(llm).classify(text, TODAY)

    rules = RuleClassifier().classify(text, TODAY)
    assert (t.label, t.confidence, t.promise_date) == (
        rules.label,
        rules.confidence,
        rules.promise_date,
    )
    assert t.reason.startswith("model unavailable (")
    assert len(llm.requests) == 1
    (record,) = [r for r in caplog.records if r.name == "integrations.llm"]
    assert "the rules decide" in record.getMessage()
    assert text not in record.getMessage() and KEY not in record.getMessage()


def test_a_model_that_does_not_answer_in_time_leaves_it_to_the_rules(
    llm: FakeLlm, caplog: pytest.LogCaptureFixture
) -> None:
    llm.hangs()

    with caplog.at_level(logging.WARNING, logger="integrations.llm"):
        t = classifier(llm, timeout_seconds=0.2).classify(
            "Remove me from your mailing list.", TODAY
        )

    assert t.label == "opt_out"
    assert "no answer in time" in t.reason
    assert "no answer in time" in caplog.text


def test_an_unreachable_model_leaves_it_to_the_rules() -> None:
    server = FakeLlm().start()
    base_url = server.base_url
    server.stop()  # nothing listens on the port any more

    t = LlmClassifier(base_url, "m", KEY, RuleClassifier()).classify("STOP", TODAY)

    assert t.label == "opt_out"
    assert "cannot reach" in t.reason


@pytest.mark.parametrize("said", ["promise_to_pay", "other", "already_paid"])
def test_a_dispute_the_rules_see_stands_over_the_models_answer(llm: FakeLlm, said: str) -> None:
    llm.answers(label=said, confidence=0.95, promise_date="2026-03-20")

    t = classifier(llm).classify(DISPUTE, TODAY)

    assert t.label == "dispute"
    assert t.promise_date is None
    assert f"the model's {said}" in t.reason


def test_an_opt_out_the_rules_see_stands_over_the_models_answer(llm: FakeLlm) -> None:
    llm.answers(label="promise_to_pay", confidence=0.9, promise_date="2026-03-27")

    t = classifier(llm).classify("Unsubscribe me. We'll pay next Friday.", TODAY)

    assert t.label == "opt_out"


def test_the_model_may_see_a_dispute_the_rules_missed(llm: FakeLlm) -> None:
    llm.answers(label="dispute", confidence=0.8, promise_date=None)

    t = classifier(llm).classify("These charges are for a location we closed last year.", TODAY)

    assert t.label == "dispute"


def test_a_promise_date_is_kept_only_for_a_promise_and_only_when_not_past(llm: FakeLlm) -> None:
    llm.answers(label="question", confidence=0.7, promise_date="2026-03-20")
    assert classifier(llm).classify("When is it due?", TODAY).promise_date is None

    llm.answers(label="promise_to_pay", confidence=0.7, promise_date="2026-03-02")
    assert classifier(llm).classify("Paying soon.", TODAY).promise_date is None


def test_a_promise_date_more_than_a_year_ahead_is_dropped_as_the_rules_drop_it(
    llm: FakeLlm,
) -> None:
    """A date past a year out is taken for a typo (2027 for 2026), as the rules take it: it
    would hold the account back for over a year."""
    llm.answers(label="promise_to_pay", confidence=0.9, promise_date="2027-03-18")
    assert classifier(llm).classify("Paying on 18 March 2027.", TODAY).promise_date is None

    llm.answers(label="promise_to_pay", confidence=0.9, promise_date="2027-03-17")
    assert classifier(llm).classify("Paying on 17 March 2027.", TODAY).promise_date == date(
        2027, 3, 17
    )
    assert RuleClassifier().classify("We will pay on 2027-03-18.", TODAY).promise_date is None


def test_settings_with_a_base_url_and_a_model_give_the_model_classifier() -> None:
    settings = Settings(
        _env_file=None,
        LLM_BASE_URL="http://127.0.0.1:9/v1",
        LLM_MODEL="triage-small",
        LLM_API_KEY="sk-from-env",
    )

    chosen = classifier_from(settings, RuleClassifier())

    assert isinstance(chosen, LlmClassifier)
    assert chosen.url == "http://127.0.0.1:9/v1/chat/completions"
    assert chosen.api_key == "sk-from-env"
    assert isinstance(chosen.fallback, RuleClassifier)


@pytest.mark.parametrize(
    ("base_url", "model"), [(None, None), ("http://127.0.0.1:9/v1", None), (None, "m")]
)
def test_without_both_base_url_and_model_the_rules_alone_decide(
    base_url: str | None, model: str | None
) -> None:
    class Plain:
        llm_base_url = base_url
        llm_model = model
        llm_api_key: SecretStr | None = SecretStr("unused")

    assert isinstance(classifier_from(Plain(), RuleClassifier()), RuleClassifier)
