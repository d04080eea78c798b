"""The errors a ledger source or a CRM raises, each with the message a user reads and what to do."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot.core.errors import UserError

if TYPE_CHECKING:
    import httpx


class SourceError(UserError):
    """A ledger source could not be reached or refused a request; the message says what to do."""


class ReconnectNeeded(SourceError):
    """The stored grant is gone (revoked, expired, never made): `arbot connect <provider>` again."""


class SourceUnavailable(SourceError):
    """Rate limited, down, or unreachable: nothing to fix here, try again later."""


def json_or_empty(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object; {} when it is not JSON or not an object."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class SlackFailed(SlackApiError):
    """Slack answered a call with an error: `error` is Slack's code (`not_in_channel`, …). The
    Slack adapter raises it so the core can react without knowing slack_sdk."""

    def __init__(self, message: str, response: Any) -> None:
        super().__init__(message, response)  # type: ignore[no-untyped-call]

    @property
    def error(self) -> str:
        return str(self.response.get("error") or "unknown_error")

    @property
    def unreachable(self) -> bool:
        """Whether Slack gave no answer (the adapter's `unreachable: <kind>`): the next call
        would wait for it the same way."""
        return self.error.startswith("unreachable")


def in_one_line(exc: BaseException) -> str:
    """What a failure says, on one line: Slack's code, else the error's first line (a database
    error's, without its SQL), else its kind."""
    if isinstance(exc, SlackFailed):
        return exc.error
    first = next(iter(str(exc).splitlines()), "").strip()
    return first or type(exc).__name__


def slack_error(exc: BaseException) -> str:
    """What a Slack call's failure says: Slack's code, else the exception's kind."""
    return exc.error if isinstance(exc, SlackFailed) else type(exc).__name__


def outcome_unknown(exc: BaseException) -> bool:
    """A post that failed this way may have reached Slack all the same: anything but Slack's own
    answer refusing the call (an HTTP 200 with ok: false, or a 429 sent before doing anything)."""
    status = getattr(getattr(exc, "response", None), "status_code", 0)
    return not (isinstance(exc, SlackFailed) and status in (200, 429))


class InstallFailed(Exception):
    """Slack did not grant the install, or arbot will not take it; the message says what
    happened, for the installer."""
