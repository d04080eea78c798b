"""A payment plan's instalment reminder: the playbook's `instalment` step, due for a customer
whose next instalment of a running plan falls within the step's days before its date and was not
reminded yet (`instalment_due`). The planner puts it before an ordinary ladder step of the
customer's other invoices, never before an escalation to a person. When the frequency cap holds
it past the instalment's date, a person is told instead (`instalment_escalation`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from bot.escalations.plans import NextInstalment
from bot.planning import guardrails
from bot.planning.day_plan import DueInvoice, PlanItem, day_start
from bot.planning.facts import CustomerFacts, History
from bot.planning.rules import PlanRules
from playbooks.model import Step


def instalment_due(
    customer: CustomerFacts, base: Step | None, history: History, day: date
) -> tuple[NextInstalment | None, list[DueInvoice]]:
    """The playbook's instalment reminder (`base`), when the customer's next instalment of a
    running plan falls within the step's days before its date and was not reminded yet."""
    upcoming = history.instalments.get(customer.id)
    if base is None or upcoming is None:
        return None, []
    if not upcoming.due_on + timedelta(days=base.offset_days) <= day <= upcoming.due_on:
        return None, []
    step = base.model_copy(update={"key": upcoming.step_key})
    covered = [
        i
        for i in customer.invoices
        if i.id in upcoming.invoice_ids and not i.disputed and i.balance > 0
    ]
    if not covered or any((i.id, step.key, i.due_date) in history.done for i in covered):
        return None, []
    return upcoming, [DueInvoice(i, step, (day - i.due_date).days) for i in covered]


def instalment_escalation(
    customer: CustomerFacts,
    due: list[DueInvoice],
    ladder: str,
    instalment: NextInstalment | None,
    history: History,
    rules: PlanRules,
    day: date,
    anchor: datetime,
) -> PlanItem | None:
    """An escalation instead of the instalment's reminder when the frequency cap holds it
    past the instalment's date (`day` is that date, or the cap lasts beyond it): the customer
    would not be told before the instalment falls due, so a person is."""
    if instalment is None:
        return None
    last = history.last_touch.get(customer.id)
    if last is None or not guardrails.too_soon(customer, history, anchor, rules.frequency_cap):
        return None
    after_its_date = day_start(instalment.due_on + timedelta(days=1), rules.business_timezone)
    if day < instalment.due_on and last + rules.frequency_cap < after_its_date:
        return None  # a later day of its window is free of the cap
    reason = (
        f"instalment {instalment.seq} of {instalment.count} due "
        f"{instalment.due_on.isoformat()} not reminded (frequency cap)"
    )
    owner = customer.owner_slack_id or rules.escalation_routes.get(customer.tier)
    return PlanItem(
        customer,
        "escalate",
        due[0].step,
        ladder,
        due,
        escalate_to=owner,
        reason=reason[:64],  # Escalation.reason's length
    )
