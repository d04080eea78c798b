"""The daily plan: which customer gets which message today, and why the others are held back.

For each open invoice the due step is the latest step whose offset is at or before today's days
past due; if that step is already done nothing is due (an invoice first seen at +20 gets the +14
step, never +7 and +14 together). One message per customer per day covers every invoice with a
step due, at the firmest tone among them. `escalate` steps and never-automate customers go to a
person instead of a message.

What the plan follows is in `rules` (`PlanRules`, `Pilot`), what it holds in `day_plan` (`Plan`,
`PlanItem`, `Held`, `DueInvoice`), a payment plan's instalment reminder in `instalment_reminders`
and putting a reminder's message together in `rendering`; the names are imported here too, for
the callers that take them from the planner.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime

from bot.planning import guardrails
from bot.planning.day_plan import DueInvoice, Held, Plan, PlanItem, day_start
from bot.planning.facts import CustomerFacts, History, InvoiceFacts
from bot.planning.instalment_reminders import instalment_due, instalment_escalation
from bot.planning.rendering import render_reminder
from bot.planning.rules import Pilot, PlanRules
from bot.planning.send_window import candidate_zones, next_send_time
from playbooks.model import TONE_ORDER, Playbook, Step
from playbooks.render import Renderer

__all__ = [
    "DayPlanner",
    "DueInvoice",
    "Held",
    "LinkFor",
    "Pilot",
    "Plan",
    "PlanItem",
    "PlanRules",
    "compute_plan",
    "day_start",
    "due_step",
    "firmest",
    "latest_step",
]


def due_step(ladder: list[Step], invoice: InvoiceFacts, day: date, history: History) -> Step | None:
    latest = latest_step(ladder, (day - invoice.due_date).days)
    if latest is None or (invoice.id, latest.key, invoice.due_date) in history.done:
        return None
    return latest


def latest_step(ladder: list[Step], days_past_due: int) -> Step | None:
    """The ladder's last step whose offset is at or before `days_past_due`, done or not."""
    latest = None
    for step in ladder:
        if step.offset_days <= days_past_due:
            latest = step
    return latest


def firmest(due: list[DueInvoice]) -> Step:
    """The firmest step due (by tone, then offset); the first of equals. Each step is weighed once,
    however many invoices have it due."""
    steps = {id(d.step): d.step for d in due}  # in the order each step first appears
    return max(
        steps.values(), key=lambda s: (TONE_ORDER.index(s.tone or "courtesy"), s.offset_days)
    )


LinkFor = Callable[[CustomerFacts, list[InvoiceFacts]], str | None]


def compute_plan(
    customers: Iterable[CustomerFacts],
    history: History,
    playbook: Playbook,
    rules: PlanRules,
    day: date,
    now: datetime,
    renderer: Renderer | None = None,
    link_for: LinkFor | None = None,
) -> Plan:
    """The plan for `day`, from what was loaded; pure: nothing is read or written here."""
    planner = DayPlanner(history, playbook, rules, day, now, renderer, link_for)
    for customer in customers:
        planner.add(customer)
    return planner.plan


class DayPlanner:
    """The plan for one day, worked out one customer at a time (`add`), so that customers can be
    read one at a time too. Its `plan` holds what was decided so far."""

    def __init__(
        self,
        history: History,
        playbook: Playbook,
        rules: PlanRules,
        day: date,
        now: datetime,
        renderer: Renderer | None = None,
        link_for: LinkFor | None = None,
    ) -> None:
        self.plan = Plan(day=day)
        self.history = history
        self.playbook = playbook
        self.rules = rules
        self.renderer = renderer
        self.link_for = link_for
        self.anchor = max(now, day_start(day, rules.business_timezone))
        self.pilot_invoices = 0
        # Worked out once per plan: the latest step of a ladder for a due date (with the days
        # past due), and the send time for a set of zones (the anchor and the window are the
        # plan's). A book's invoices share a few hundred due dates.
        self._latest: dict[int, dict[date, tuple[Step | None, int]]] = {}  # id(ladder) -> ...
        self._send_times: dict[tuple[str, ...], datetime | None] = {}
        # A customer's ladder by its tier and tags: the few pairs a book holds, looked up once.
        self._ladders: dict[tuple[str, ...], tuple[str, list[Step]]] = {}

    def add(self, customer: CustomerFacts) -> None:
        """Plan one customer: a reminder or an escalation for it, or why it is held back."""
        plan, history, rules, day = self.plan, self.history, self.rules, self.plan.day
        segment = (customer.tier, *customer.tags)
        found = self._ladders.get(segment)
        if found is None:
            found = self._ladders[segment] = self.playbook.ladder_for(customer.tier, customer.tags)
        ladder_name, ladder = found
        due: list[DueInvoice] = []
        held_by_reason: dict[str, list[str]] = defaultdict(list)
        done = history.done
        latest = self._latest.get(id(ladder))
        if latest is None:
            latest = self._latest[id(ladder)] = {}
        write_off, resolved_when = rules.write_off, rules.resolved_when
        for invoice in customer.invoices:
            due_date = invoice.due_date
            known = latest.get(due_date)
            if known is None:
                days = (day - due_date).days
                known = latest[due_date] = (latest_step(ladder, days), days)
            step, days_past_due = known
            if step is None or (invoice.id, step.key, due_date) in done:
                continue
            reason = guardrails.invoice_hold(invoice, day, write_off, resolved_when)
            if reason:
                held_by_reason[reason].append(invoice.number)
                continue
            due.append(DueInvoice(invoice, step, days_past_due))
        if held_by_reason:
            plan.held.extend(
                Held(customer, numbers, reason) for reason, numbers in held_by_reason.items()
            )
        # A payment plan's instalment is reminded within its few days before its date: its
        # reminder goes before an ordinary ladder step of other invoices (which waits, as for
        # the frequency cap, and is sent later), never before an escalation to a person.
        instalment, reminding = instalment_due(customer, self.playbook.instalment, history, day)
        if reminding and (
            not due or _escalation(customer, due, ladder_name, history, rules) is None
        ):
            due = reminding
        else:
            instalment = None
        if not due:
            return
        numbers = [d.invoice.number for d in due]
        reason = guardrails.customer_hold(customer, history, self.anchor)
        if (customer.id, day) in history.planned_days:
            reason = guardrails.ALREADY_TODAY
        if reason:
            plan.held.append(Held(customer, numbers, reason))
            return
        item = (
            _escalation(customer, due, ladder_name, history, rules)
            or instalment_escalation(
                customer, due, ladder_name, instalment, history, rules, day, self.anchor
            )
            or _reminder(
                customer, due, ladder_name, history, rules, self.anchor, plan, self._send_times
            )
        )
        if item is None:
            return
        item.instalment = instalment
        in_scope = rules.pilot.covers(customer)
        # The control group gets no automated message; an escalation still reaches a person.
        if in_scope and item.action == "remind" and customer.id in history.control:
            item.control, in_scope = True, False
        if in_scope and rules.pilot.max_invoices is not None:
            in_scope = self.pilot_invoices + len(due) <= rules.pilot.max_invoices
            self.pilot_invoices += len(due) if in_scope else 0
        if not in_scope:
            item.observe_only = True
            plan.observed.append(item)
            return
        if item.action == "remind" and self.renderer is not None:
            try:
                link = (
                    self.link_for(customer, [d.invoice for d in item.due])
                    if self.link_for
                    else None
                )
            except Exception as exc:  # the processor refused or is down: a person looks
                plan.held.append(
                    Held(
                        customer,
                        numbers,
                        guardrails.PAYMENT_LINK_ERROR,
                        f"{type(exc).__name__}: {exc}"[:300],
                    )
                )
                return
            problem = render_reminder(item, self.renderer, rules, day, link)
            if problem is not None:  # e.g. a long name pushed the text past 320 characters
                plan.held.append(Held(customer, numbers, guardrails.TEMPLATE_ERROR, problem))
                return
        plan.items.append(item)


def _escalation(
    customer: CustomerFacts,
    due: list[DueInvoice],
    ladder: str,
    history: History,
    rules: PlanRules,
) -> PlanItem | None:
    reason = "never_automate" if customer.never_automate else None
    touches = history.touches
    for invoice, step, _days in due if reason is None else ():
        if step.action == "escalate":
            reason = f"step {step.key} ({step.offset_days:+d} days)"
            break
        limit = step.escalate_after_touches
        if limit is not None and touches.get(invoice.id, 0) >= limit:
            reason = f"{limit} touches on {invoice.number} without an answer or a payment"
            break
    if reason is None:
        return None
    escalating = [d.step for d in due if d.step.action == "escalate"]
    step = escalating[-1] if escalating else firmest(due)
    owner = customer.owner_slack_id or rules.escalation_routes.get(customer.tier)
    return PlanItem(customer, "escalate", step, ladder, due, escalate_to=owner, reason=reason)


def _reminder(
    customer: CustomerFacts,
    due: list[DueInvoice],
    ladder: str,
    history: History,
    rules: PlanRules,
    anchor: datetime,
    plan: Plan,
    send_times: dict[tuple[str, ...], datetime | None] | None = None,
) -> PlanItem | None:
    """`send_times`: the send time already worked out for a set of zones (from `anchor` in
    the rules' window), filled in as it goes."""
    numbers = [d.invoice.number for d in due]
    step = firmest(due)
    route = guardrails.choose_route(customer, step.channels)
    if route.hold or route.contact is None:
        plan.held.append(Held(customer, numbers, route.hold or guardrails.NO_CONTACT))
        return None
    if guardrails.too_soon(customer, history, anchor, rules.frequency_cap):
        last = history.last_touch[customer.id]
        plan.held.append(
            Held(
                customer,
                numbers,
                guardrails.FREQUENCY_CAP,
                f"last touch {last.isoformat(timespec='minutes')}",
            )
        )
        return None
    zones = candidate_zones(route.contact.timezone or customer.timezone, route.contact.phone)
    if not zones:
        plan.held.append(
            Held(customer, numbers, guardrails.UNKNOWN_TIMEZONE, "add a timezone for this customer")
        )
        return None
    if send_times is None:
        send_after = next_send_time(anchor, zones, rules.window)
    elif zones in send_times:
        send_after = send_times[zones]
    else:
        send_after = send_times[zones] = next_send_time(anchor, zones, rules.window)
    if send_after is None:
        plan.held.append(
            Held(
                customer,
                numbers,
                guardrails.NO_SEND_WINDOW,
                f"no shared sending hours in {', '.join(zones)}",
            )
        )
        return None
    return PlanItem(
        customer,
        "remind",
        step,
        ladder,
        due,
        contact=route.contact,
        channel=route.channel,
        send_after=send_after,
        auto_approve=all(d.step.auto_approve for d in due),
    )
