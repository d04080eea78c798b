"""The steps `arbot plan` and `arbot send` take, shared with the scheduler: who sends (SMTP, Twilio
or a folder of files), one run of the send worker and what Slack is told after it, the payment
links, and posting the stored plan to the finance channel."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from bot.core.errors import UserError
from bot.core.runtime import Runtime
from bot.core.settings import Settings
from bot.planning import posting as plan_posting
from bot.planning.posting import held_counts
from bot.planning.store import PlanRun
from bot.reminders.outbox import FlushReport
from bot.reminders.sending import flush
from integrations.email_out import FileSender, SmtpSender
from integrations.twilio_sms import TwilioSender


def build_senders(settings: Settings, outbox: Path | None = None) -> dict[str, Any]:
    """Email by SMTP and texts by Twilio as configured, or both into a folder of files."""
    if outbox is not None:
        files = FileSender(outbox)
        return {"email": files, "sms": files}
    if not settings.smtp_host:
        raise UserError(
            "set SMTP_HOST (and SMTP_PORT, SMTP_USER, SMTP_PASSWORD) to send email, "
            "or use --outbox DIR to write the messages to files"
        )
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    senders: dict[str, Any] = {
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
        public = settings.public_url
        callback = public.rstrip("/") + "/webhooks/twilio/status" if public else None
        senders["sms"] = TwilioSender(
            settings.twilio_api_url, sid, token.get_secret_value(), sender, callback
        )
    return senders


def send_once(runtime: Runtime) -> None:
    report = flush(runtime, build_senders(runtime.settings))
    tell_slack_after_send(runtime, report)


def tell_slack_after_send(runtime: Runtime, report: FlushReport) -> None:
    settings = runtime.settings
    if not (settings.slack_bot_token and settings.finance_channel):
        return
    if report.outage:
        from integrations.slack_chat import web_client as _client

        _client(
            settings.slack_bot_token.get_secret_value(), settings.slack_api_url
        ).chat_postMessage(
            channel=settings.finance_channel,
            text=f"Sending stopped: {report.outage}. The approved reminders wait; please fix it.",
        )
    if not report.changed():
        return
    from integrations.slack_chat import SlackChat, web_client

    client = web_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    with runtime.sessions() as session:
        plan_posting.refresh(session, SlackChat(client), report.changed(), settings.timezone)
    if report.unknown:
        client.chat_postMessage(
            channel=settings.finance_channel,
            text=(
                f"{len(report.unknown)} reminder(s) may or may not have gone out: the sender "
                f"stopped while sending (ids {report.unknown}). Please check the mailbox and "
                "mark each sent, or approve it again."
            ),
        )


def payment_links_for(settings: Settings) -> Any:
    """Stripe payment links when STRIPE_API_KEY is set; otherwise none."""
    from integrations.stripe_links import links_from

    key = settings.stripe_api_key
    return links_from(key.get_secret_value() if key else None, settings.stripe_api_base)


def post_plan_to_slack(runtime: Runtime, day: date, run: PlanRun) -> str | None:
    """Post the stored plan to ARBOT_FINANCE_CHANNEL when Slack is set up; None when it is not."""
    settings = runtime.settings
    if not (settings.slack_bot_token and settings.finance_channel):
        return None
    polish_drafts(runtime, run)
    from slack_sdk.errors import SlackApiError

    from integrations.slack_chat import SlackChat, web_client

    client = web_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    held = held_counts([h.reason for h in run.plan.held])
    try:
        plan_posting.post_plan(runtime, SlackChat(client), settings.finance_channel, day, held)
    except SlackApiError as exc:
        raise UserError(
            f"the plan is stored, but Slack refused it ({exc.response.get('error')}); "
            f"check SLACK_BOT_TOKEN and that the bot is in {settings.finance_channel}, then run "
            "`arbot plan` again to post it"
        ) from None
    return settings.finance_channel


def polish_drafts(runtime: Runtime, run: PlanRun) -> list[int]:
    """With ARBOT_LLM_DRAFTING on (and LLM_BASE_URL, LLM_MODEL), the day's reminders waiting for
    approval get a polished draft before they are posted; see bot/reminders/drafting.py."""
    settings = runtime.settings
    if not (settings.llm_drafting and settings.llm_base_url and settings.llm_model):
        return []
    from bot.reminders.drafting import polish
    from integrations.llm_draft import LlmDrafter

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    drafter = LlmDrafter(settings.llm_base_url, settings.llm_model, key)
    try:
        return polish(runtime, list(run.reminder_ids.values()), drafter)
    finally:
        drafter.close()
