"""The one place adapters are built from settings: Slack, the email and SMS senders, Stripe payment
links and the LLM drafter. Entry points (handlers/, scheduler/) call these and hand what they get to
`bot/`, which knows only the ports in integrations/base.py.

Each builder imports its adapter when it is called: a command that sends nothing never loads an
SDK, and `arbot --help` loads none at all."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bot.core.errors import UserError
from bot.core.settings import Settings

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from integrations.base import PaymentLinks, Sender
    from integrations.llm_draft import LlmDrafter
    from integrations.slack_chat import SlackChat


def slack_client_for(settings: Settings) -> WebClient | None:
    """slack_sdk's client on SLACK_BOT_TOKEN and SLACK_API_URL; None without a token."""
    if not settings.slack_bot_token:
        return None
    from integrations.slack_chat import web_client

    return web_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)


def slack_for(settings: Settings) -> SlackChat | None:
    """The Slack side for work outside a Slack request (the CLI, jobs, webhooks); None without a
    token."""
    client = slack_client_for(settings)
    if client is None:
        return None
    from integrations.slack_chat import SlackChat

    return SlackChat(client)


def senders_for(settings: Settings, outbox: Path | None = None) -> dict[str, Sender]:
    """Email by SMTP and texts by Twilio as configured, or both into a folder of files."""
    from integrations.email_out import FileSender, SmtpSender

    if outbox is not None:
        files = FileSender(outbox)
        return {"email": files, "sms": files}
    if not settings.smtp_host:
        raise UserError(
            "set SMTP_HOST (and SMTP_PORT, SMTP_USER, SMTP_PASSWORD) to send email, "
            "or use --outbox DIR to write the messages to files"
        )
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    senders: dict[str, Sender] = {
        "email": SmtpSender(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_user,
            password,
            settings.smtp_starttls,
            ca_file=settings.smtp_ca_file,
        )
    }
    sid, token, sender = (
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        settings.twilio_from,
    )
    if sid and token and sender:
        from integrations.twilio_sms import TwilioSender

        public = settings.public_url
        callback = public.rstrip("/") + "/webhooks/twilio/status" if public else None
        senders["sms"] = TwilioSender(
            settings.twilio_api_url, sid, token.get_secret_value(), sender, callback
        )
    return senders


def links_for(settings: Settings) -> PaymentLinks | None:
    """Stripe payment links when STRIPE_API_KEY is set; otherwise none."""
    if not settings.stripe_api_key:
        return None
    from integrations.stripe_links import StripeLinks

    return StripeLinks(settings.stripe_api_key.get_secret_value(), settings.stripe_api_base)


def drafter_for(settings: Settings) -> LlmDrafter | None:
    """The LLM that polishes drafts when ARBOT_LLM_DRAFTING is on with LLM_BASE_URL and LLM_MODEL;
    the caller closes it."""
    if not (settings.llm_drafting and settings.llm_base_url and settings.llm_model):
        return None
    from integrations.llm_draft import LlmDrafter

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return LlmDrafter(settings.llm_base_url, settings.llm_model, key)
