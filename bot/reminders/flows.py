"""Send what is due: the one story `arbot send` and the scheduler's send job both tell.

The outbox claims, sends and records each reminder exactly once (bot/reminders/sending.py, each in
its own short transaction); only after that are the cards redrawn and the finance channel told of
an outage or of sends whose fate is unknown."""

from __future__ import annotations

from bot.core.labels import reason_label
from bot.core.runtime import Runtime
from bot.reminders.outbox import FlushReport
from bot.reminders.sending import flush
from integrations.base.documents import CopyFetchers
from integrations.base.mrkdwn import mrkdwn
from integrations.base.outbound import Sender
from integrations.base.slack import SlackPort


def send_due(
    runtime: Runtime,
    senders: dict[str, Sender],
    slack: SlackPort | None,
    copies: CopyFetchers | None = None,
) -> FlushReport:
    """Send the approved reminders that are due now, then tell Slack what changed. `copies`
    fetches the copies of invoices emails carry."""
    report = flush(runtime, senders, copies)
    tell_slack(runtime, report, slack)
    return report


def tell_slack(runtime: Runtime, report: FlushReport, slack: SlackPort | None) -> None:
    settings = runtime.settings
    channel = settings.finance_channel
    if slack is None or not channel:
        return
    # Imported here: redrawing cards and telling threads weigh an eighth of `arbot send`'s start-up
    # (0.13 s of CPU), which a run without Slack never needs.
    from bot.escalations import reply_outcome
    from bot.planning import posting

    if report.outage and not report.outage_told:  # told once, when the outage begins
        slack.post_text(
            channel,
            mrkdwn(
                "Sending stopped: ", report.outage, ". The approved reminders wait; please fix it."
            ),
        )
    for reminder_id, why in sorted(report.not_sent.items()):
        slack.post_text(
            channel,
            mrkdwn(
                f"Reminder {reminder_id} was not sent: it was to carry a copy of an invoice, and ",
                why,
                ". A person has the account in its escalation thread.",
            ),
        )
    if not report.changed():
        return
    with runtime.sessions() as session:
        posting.refresh(session, slack, report.changed(), settings.timezone)
        reply_outcome.tell_threads(  # replies written in a thread: sent, or not delivered
            session, slack, [*report.sent, *report.failed, *report.not_sent], settings.timezone
        )
    if report.unknown:
        slack.post_text(
            channel,
            mrkdwn(
                f"{len(report.unknown)} reminder(s) may or may not have gone out: the sender "
                f"stopped while sending (ids {report.unknown}). Please check the mailbox: each "
                "is also in its customer's escalation, for a person."
            ),
        )
    for reminder_id, stop in sorted(report.stopped_unknown.items()):
        slack.post_text(
            channel,
            mrkdwn(
                f"Reminder {reminder_id}: a stop was asked (",
                stop,
                ") after it was claimed; it was probably not handed over.",
            ),
        )
    for reminder_id, stop in sorted(report.sent_after_stop.items()):
        slack.post_text(
            channel,
            mrkdwn(
                f"Reminder {reminder_id} went out after a stop was asked (",
                reason_label(stop),
                "): the provider already had it. It is in its customer's escalation, for a person.",
            ),
        )
