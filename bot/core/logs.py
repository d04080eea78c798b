"""How arbot logs: one JSON object per line in production (ARBOT_LOG_JSON=true) or readable lines
for a person, the request id of the HTTP request being handled on every line, and the values of
secret settings masked wherever they would appear (a message, an exception, a traceback).

Log ids and counts, never message bodies, addresses or tokens."""

from __future__ import annotations

import json as jsonlib
import logging
import sys
import threading
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from bot.core.settings import Settings

request_id: ContextVar[str | None] = ContextVar("arbot_request_id", default=None)

MASK = "***"
MIN_SECRET_LENGTH = 8  # shorter values are too common as plain text to mask safely
QUIET_LOGGERS = ("apscheduler", "slack_sdk", "slack_bolt", "httpx", "httpcore")
_HANDLER_NAME = "arbot"


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            doc["request_id"] = rid
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        return jsonlib.dumps(doc, ensure_ascii=False, default=str)


class Readable(logging.Formatter):
    """`2026-03-16 09:00:00,123 INFO bot.escalations.sweeps [req 3f2a…] message` for a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(request_part)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.request_part = f" [req {rid}]" if rid else ""
        return super().format(record)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the request id of the request being handled (if any)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True


class SecretMask(logging.Filter):
    """Replaces the values of secret settings with *** in the message and the exception text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._adding = threading.Lock()
        # Longest first, so a secret containing another is masked whole.
        self.secrets = sorted(
            {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True
        )

    def add(self, secrets: Iterable[str]) -> None:
        """More values to mask (an installed workspace's, when it is opened)."""
        with self._adding:  # two workspaces opening at once must not drop each other's
            more = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH} | set(self.secrets)
            self.secrets = sorted(more, key=len, reverse=True)  # one assignment: readers never wait

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        record.msg, record.args = self.mask(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


def secrets_of(settings: Settings) -> list[str]:
    """The values of every secret setting that is set (tokens, passwords, keys)."""
    values = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            values.append(value.get_secret_value())
    return values


def mask_secrets(secrets: Iterable[str]) -> None:
    """Mask these values too in arbot's log handler (when logging is set up)."""
    for handler in logging.getLogger().handlers:
        if handler.get_name() == _HANDLER_NAME:
            for found in handler.filters:
                if isinstance(found, SecretMask):
                    found.add(secrets)


def setup_logging(
    json: bool, secrets: Iterable[str] = (), level: int = logging.INFO, stream: Any = None
) -> logging.Handler:
    """Send every log record to stderr (or `stream`), as JSON lines when `json` is true.

    Calling it again replaces arbot's handler rather than adding a second one."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonLines() if json else Readable())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(SecretMask(secrets))
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:  # their INFO lines (every job run, every API call) are noise
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    return handler
