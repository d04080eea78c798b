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


class InstallFailed(Exception):
    """Slack did not grant the install, or arbot will not take it; the message says what
    happened, for the installer."""
