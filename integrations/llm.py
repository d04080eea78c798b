"""Optional reply triage by a language model behind any OpenAI-compatible chat completions API.

Off unless LLM_BASE_URL and LLM_MODEL are set. Only the customer's own words go out: quoted
history (our reminder, with the customer's name and amounts) and signatures are cut first, and
nothing is added but the labels and today's date. The answer must be one JSON object that
validates; anything else (an HTTP error, a timeout, bad JSON, an unknown label) falls back to the
rules, and the log says why. A dispute or an opt-out the rules see stands whatever the model says:
both must stop automation, and a model's slip must not restart it.
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from integrations.base.inbound import (
    LABELS,
    PROMISE_HORIZON_DAYS,
    Classifier,
    FallbackClassifier,
    Triage,
)
from integrations.tls import http_client

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
_STANDS = frozenset({"dispute", "opt_out"})  # a rules verdict the model cannot overturn
PROMISE_DAYS = timedelta(days=PROMISE_HORIZON_DAYS)  # as far ahead as the rules read a promise
_INSTRUCTIONS = """\
You label a customer's reply to a payment reminder from a business they owe money to.
Today is {today} ({weekday}).
Labels:
- dispute: they contest the invoice, the amount, the work or the goods, or refuse to pay it
- already_paid: they say they have already paid
- promise_to_pay: they say they will pay, possibly by a date
- payment_plan_request: they ask to pay in parts, over time, or for an extension
- hardship: they describe financial, health or personal difficulty
- question: they ask about the invoice, how to pay, or for a document
- wrong_contact: the message reached the wrong person, or someone who no longer handles this
- opt_out: they ask us to stop contacting them, unsubscribe, or STOP
- other: anything else (thanks, acknowledgements, "will look into it")
Answer with one JSON object and nothing else:
{{"label": "<one label>", "confidence": <number from 0 to 1>, "promise_date": "YYYY-MM-DD" or null}}
Give promise_date only for promise_to_pay, as the date they named, read relative to today."""


class ModelAnswer(BaseModel):
    """What the model must answer; anything else is refused and the rules decide."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    label: str
    confidence: float = Field(ge=0, le=1)
    promise_date: date | None = None

    @field_validator("label")
    @classmethod
    def _known(cls, label: str) -> str:
        if label not in LABELS:
            raise ValueError(f"{label!r} is not one of {', '.join(LABELS)}")
        return label


class LlmSettings(Protocol):
    """The part of `bot.core.settings.Settings` the model needs."""

    @property
    def llm_base_url(self) -> str | None: ...

    @property
    def llm_model(self) -> str | None: ...

    @property
    def llm_api_key(self) -> SecretStr | None: ...


class LlmClassifier:
    """Asks the model, showing it only `fallback.own_words` of the reply; on any failure answers
    what `fallback` says."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None,
        fallback: FallbackClassifier,
        client: httpx.Client | None = None,
        timeout_seconds: float = TIMEOUT_SECONDS,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/chat/completions"
        self.model = model
        self.api_key = api_key
        self.fallback = fallback
        self.timeout_seconds = timeout_seconds
        self._client = client or http_client(timeout=timeout_seconds)
        self._owns_client = client is None

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def classify(self, text: str, today: date) -> Triage:
        rules = self.fallback.classify(text, today)
        try:
            answer = self._ask(self.fallback.own_words(text) or text.strip(), today)
        except Exception as exc:  # any failure of an optional model ends with the rules
            why = _why(exc)
            log.warning("reply triage by %s failed, the rules decide: %s", self.model, why)
            return Triage(
                rules.label,
                rules.confidence,
                rules.promise_date,
                f"model unavailable ({why}); {rules.reason}",
            )
        if rules.label in _STANDS and answer.label != rules.label:
            log.info("the rules saw %s where %s said %s", rules.label, self.model, answer.label)
            return Triage(
                rules.label,
                rules.confidence,
                None,
                f"{rules.reason}; stands over the model's {answer.label}",
            )
        promise = answer.promise_date if answer.label == "promise_to_pay" else None
        if promise is not None and not today <= promise <= today + PROMISE_DAYS:
            promise = None  # a day gone by holds nothing; one past a year out is a typo
        return Triage(
            answer.label, answer.confidence, promise, f"{answer.label}: said by model {self.model}"
        )

    def _ask(self, words: str, today: date) -> ModelAnswer:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        response = self._client.post(
            self.url,
            json=self._request(words, today),
            headers=headers,
            timeout=self.timeout_seconds,
        )
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise ValueError("the answer carries no text")
        return ModelAnswer.model_validate_json(content)

    def _request(self, words: str, today: date) -> dict[str, Any]:
        instructions = _INSTRUCTIONS.format(today=today.isoformat(), weekday=today.strftime("%A"))
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": instructions},
                {"role": "user", "content": words},
            ],
            "response_format": {"type": "json_object"},
            "temperature": 0,
        }


def _why(exc: Exception) -> str:
    """A log line's worth, with no reply text and no key in it."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from the model's API"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(exc, httpx.HTTPError):
        return f"cannot reach the model's API ({type(exc).__name__})"
    if isinstance(exc, ValidationError):
        fields = ", ".join(".".join(map(str, e["loc"])) or "answer" for e in exc.errors())
        return f"the answer does not validate ({fields})"
    if isinstance(exc, json.JSONDecodeError | KeyError | IndexError | TypeError):
        return f"the answer is not the expected JSON ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


def classifier_from(settings: LlmSettings, rules: FallbackClassifier) -> Classifier:
    """The model (falling back to `rules`, bot.replies.triage.RuleClassifier) when LLM_BASE_URL
    and LLM_MODEL are set, else the rules alone."""
    if not (settings.llm_base_url and settings.llm_model):
        return rules
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return LlmClassifier(settings.llm_base_url, settings.llm_model, key, fallback=rules)
