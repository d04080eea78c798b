"""Optional LLM drafting (off unless ARBOT_LLM_DRAFTING is on and LLM_BASE_URL / LLM_MODEL are
set): any OpenAI-compatible chat endpoint polishes a reminder rendered from its template, with the
team's own recent edits of that step as examples. The answer is JSON checked by pydantic; any
failure returns None and the template's text stands."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from pydantic import BaseModel, Field

from bot.core.language import DEFAULT_LANGUAGE, language_name
from integrations.base.outbound import DraftAnswer
from integrations.tls import http_client

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 20.0
_INSTRUCTIONS = (
    "You polish payment reminders for a business's accounts-receivable team. Keep every fact "
    "exactly: invoice numbers, amounts, dates, the payment link and the opt-out line. Do not add "
    "threats, fees, deadlines or anything not in the draft. Match the tone of the team's examples. "
    "Write in the language named (the draft's own), as a finance team there would, even when the "
    "examples are in another language; keep amounts and dates written exactly as in the draft. "
    'Answer with JSON only: {"subject": "...", "body": "..."} (subject null for a text message).'
)


class _DraftJson(BaseModel):
    """The model's answer as it must look; it becomes a DraftAnswer once checked."""

    subject: str | None = Field(None, max_length=150)
    body: str = Field(min_length=1, max_length=5000)


class LlmDrafter:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None,
        client: httpx.Client | None = None,
        timeout_seconds: float = TIMEOUT_SECONDS,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/chat/completions"
        self.model, self.api_key, self.timeout_seconds = model, api_key, timeout_seconds
        self._client = client or http_client(timeout=timeout_seconds)

    def close(self) -> None:
        self._client.close()

    def draft(
        self,
        channel: str,
        subject: str | None,
        body: str,
        examples: list[str],
        language: str | None = None,
    ) -> DraftAnswer | None:
        try:
            return self._ask(channel, subject, body, examples, language)
        except Exception as exc:  # optional: any failure keeps the template's text
            log.warning(
                "drafting by %s failed, the template stands: %s", self.model, type(exc).__name__
            )
            return None

    def _ask(
        self,
        channel: str,
        subject: str | None,
        body: str,
        examples: list[str],
        language: str | None = None,
    ) -> DraftAnswer:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        shown = "\n\n---\n\n".join(examples) or "(none yet)"
        tag = language or DEFAULT_LANGUAGE
        prompt = (
            f"Channel: {channel}\nLanguage: {language_name(tag)} ({tag})\n"
            f"How the team wrote this step before:\n{shown}\n\n"
            f"Draft to polish:\nSubject: {subject or '(none)'}\n{body}"
        )
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": _INSTRUCTIONS},
                {"role": "user", "content": prompt},
            ],
            "response_format": {"type": "json_object"},
            "temperature": 0.2,
        }
        response = self._client.post(
            self.url, json=request, headers=headers, timeout=self.timeout_seconds
        )
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise ValueError("the answer carries no text")
        answer = _DraftJson.model_validate_json(content)
        return DraftAnswer(subject=answer.subject, body=answer.body)
