"""Answers to `/ar` and the App Home, as Slack mrkdwn text built from the core's documents."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from bot.core.labels import channel_label, reason_label, state_label, step_label
from bot.core.money import format_money
from integrations.base.mrkdwn import Mrkdwn, join, link, mention, mrkdwn

HELP = mrkdwn("""*arbot* follows up on unpaid invoices. Commands:
• `/ar status ACME`: open invoices, aging, last touches, what comes next
• `/ar aging`: open balances by how late they are
• `/ar plan`: today's plan and where it stands
• `/ar held`: who today's plan holds back, and why (`/ar status ACME` says it for ACME)
• `/ar pause ACME 14d [reason]` / `/ar resume ACME`: stop reminders for a while, or start again
• `/ar never ACME` / `/ar automate ACME`: always hand ACME to a person, or let reminders go again
• `/ar report`: outcomes, DSO, aging and cash by week, with charts (in the finance channel)
• `/ar forecast`: the cash expected in each of the next 13 weeks, learned from how customers pay
• `/ar assign 12 ACME`: a reply that matched no customer (message 12) is ACME's
• add `share` at the end to post the answer in the channel instead of only to you""")


def aging_text(doc: dict[str, Any]) -> Mrkdwn:
    if not doc["currencies"]:
        return mrkdwn(f"Nothing is open as of {doc['as_of']}.")
    lines = [mrkdwn(f"*Aging as of {doc['as_of']}*")]
    for code, buckets in doc["currencies"].items():
        parts = " · ".join(
            f"{name}: {format_money(Decimal(buckets[name]), code)}"
            for name in ("current", "1-30", "31-60", "61-90", "90+")
        )
        dso = doc.get("dso", {}).get(code)
        lines.append(
            mrkdwn(
                f"*{code}* {format_money(Decimal(buckets['total']), code)} open ({parts})",
                f", DSO {dso} days" if dso else "",
            )
        )
    return join(lines, "\n")


def status_text(doc: dict[str, Any], show_amounts: bool) -> Mrkdwn:
    customer = doc["customer"]
    head = mrkdwn("*", customer["name"], "* (", customer["id"], ") · ", customer["tier"])
    if customer["never_automate"]:
        head = mrkdwn(head, " · always handed to a person")
    if customer["paused_until"]:
        head = mrkdwn(head, f" · paused until {customer['paused_until'][:10]}")
    if customer["owner_slack_id"]:
        head = mrkdwn(head, " · owner ", mention(customer["owner_slack_id"]))
    lines = [head]
    if not show_amounts:
        lines.append(mrkdwn("Balances are shown to approvers and in the finance channel only."))
        return join(lines, "\n")
    invoices = doc["invoices"]
    if not invoices:
        lines.append(mrkdwn("No open invoices."))
    for inv in invoices[:15]:
        late = inv["days_past_due"]
        when = f"{late} days late" if late > 0 else f"due {inv['due_date']}"
        notes = " · disputed" if inv["disputed"] else ""
        if inv["promise_date"]:
            notes += f" · promised {inv['promise_date']}"
        pay = mrkdwn(" · ", link(inv["payment_link"], "pay")) if inv.get("payment_link") else ""
        lines.append(
            mrkdwn(
                "• ",
                inv["number"],
                ": ",
                format_money(Decimal(inv["balance"]), inv["currency"]),
                f" ({when}){notes}",
                pay,
            )
        )
    if len(invoices) > 15:
        lines.append(mrkdwn(f"• and {len(invoices) - 15} more"))
    totals = doc["aging"]["currencies"]
    if totals:
        lines.append(
            mrkdwn(
                "Open: ",
                ", ".join(format_money(Decimal(b["total"]), code) for code, b in totals.items()),
            )
        )
    touches = doc.get("touches", [])
    if touches:
        lines.append(
            mrkdwn(
                "Last touches: ",
                "; ".join(
                    f"{t['at'][:10]} {channel_label(t['channel'] or '')} "
                    f"({step_label(t['step'])}, {state_label(t['state'])})"
                    for t in touches[:3]
                ),
            )
        )
    if doc.get("next"):
        lines.append(mrkdwn("Next: ", _next_in_words(doc["next"])))
    if doc.get("payment_plan"):
        lines.append(mrkdwn(":calendar: ", doc["payment_plan"]["summary"]))
    if doc.get("control"):
        lines.append(mrkdwn(":test_tube: ", doc["control"]["summary"].capitalize()))
    open_escalations = [e for e in doc["escalations"] if e["state"] != "resolved"]
    for escalation in open_escalations:
        owner = (
            mrkdwn(" with ", mention(escalation["owner_slack_id"]))
            if escalation["owner_slack_id"]
            else ""
        )
        lines.append(
            mrkdwn(
                ":raising_hand: Handed to a person (",
                reason_label(escalation["reason"]),
                ")",
                owner,
                ", ",
                state_label(escalation["state"]),
            )
        )
    return join(lines, "\n")


_NEXT = re.compile(
    r"(?P<step>\S+) by (?P<channel>\S+), (?P<state>\w+)(?:, sends after (?P<at>.+))?"
)


def _next_in_words(upcoming: str) -> str:
    """The status document's next step ("plus7 by email, planned, sends after …") in words."""
    found = _NEXT.fullmatch(upcoming)
    if found is None:
        return upcoming
    at = f", sends after {found['at'].replace('T', ' ')}" if found["at"] else ""
    return (
        f"{step_label(found['step'])} by {channel_label(found['channel'])}, "
        f"{state_label(found['state'])}{at}"
    )


def plan_text(summary: Any, states: dict[str, int], show_amounts: bool = True) -> Mrkdwn:
    lines = [f"*Plan for {summary.day.isoformat()}*"]
    for tier in summary.tiers:
        if tier.reminders or tier.escalations:
            amount = f", {tier.amount}" if show_amounts else ""
            lines.append(
                f"{tier.tier.capitalize()}: {tier.reminders} reminders ({tier.awaiting} waiting), "
                f"{tier.escalations} to a person{amount}"
            )
    if states:
        lines.append(
            "Where it stands: "
            + ", ".join(f"{n} {state_label(s)}" for s, n in sorted(states.items()))
        )
    if len(lines) == 1:
        lines.append("Nothing planned today.")
    return join(lines, "\n")
