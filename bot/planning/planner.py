"""The daily plan: which customer gets which message today, and why the others are held back.

For each open invoice the due step is the latest step whose offset is at or before today's days
past due; if that step is already done nothing is due (an invoice first seen at +20 gets the +14
step, never +7 and +14 together). One message per customer per day covers every invoice with a
step due, at the firmest tone among them. `escalate` steps and never-automate customers go to a
person instead of a message.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo

from bot.core.language import formatting_locale, is_english
from bot.core.money import format_money
from bot.core.settings import Settings
from bot.core.vocabulary import RESOLUTIONS
from bot.escalations.plans import NextInstalment
from bot.planning import guardrails
from bot.planning.facts import ContactFacts, CustomerFacts, History, InvoiceFacts
from bot.planning.messages import MessageInvoice, Sender, long_date, message_context
from bot.planning.send_window import Window, candidate_zones, next_send_time
from playbooks.lint import lint_message
from playbooks.model import TONE_ORDER, Playbook, Step
from playbooks.render import Rendered, Renderer, RenderError


@dataclass(frozen=True)
class Pilot:
    """Automation limited to a segment; everything else is planned in observe-only mode."""

    tiers: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    customers: frozenset[str] = frozenset()
    max_invoices: int | None = None

    @property
    def active(self) -> bool:
        return bool(self.tiers or self.tags or self.customers or self.max_invoices)

    def covers(self, customer: CustomerFacts) -> bool:
        return self.scope_covers(customer.tier, customer.tags, customer.external_id)

    def scope_covers(self, tier: str, tags: Sequence[str], external_id: str) -> bool:
        """Whether the scope (tiers, tags, customers) takes in a customer; every customer when
        the pilot names none."""
        if not (self.tiers or self.tags or self.customers):
            return True
        return (
            tier in self.tiers
            or bool(self.tags.intersection(tags))
            or external_id in self.customers
        )


@dataclass(frozen=True)
class PlanRules:
    business_timezone: str
    window: Window = field(default_factory=Window)
    frequency_cap: timedelta = timedelta(days=3)
    write_off: dict[str, Decimal] = field(default_factory=dict)
    resolved_when: frozenset[str] = frozenset(RESOLUTIONS)
    escalation_routes: dict[str, str] = field(default_factory=dict)
    pilot: Pilot = field(default_factory=Pilot)
    control_share: Decimal = Decimal(0)  # ARBOT_CONTROL_SHARE (bot.planning.control)
    sender: Sender = field(default_factory=lambda: Sender("Accounts Receivable"))
    attach_invoice_pdf: bool = False  # ARBOT_ATTACH_INVOICE_PDF: a step's own say wins
    # ARBOT_UNDO_SECONDS: a trusted step's reminder, approved automatically, waits as long as
    # one a person approved, so that its Undo can take it back
    undo: timedelta = timedelta(0)

    @classmethod
    def from_settings(cls, settings: Settings) -> PlanRules:
        start, end = settings.window()
        return cls(
            business_timezone=settings.timezone,
            window=Window(start, end, settings.weekday_numbers()),
            frequency_cap=timedelta(days=settings.frequency_cap_days),
            write_off=dict(settings.write_off),
            resolved_when=frozenset(settings.resolved_when),
            escalation_routes=dict(settings.escalation_routes),
            pilot=Pilot(
                tiers=frozenset(settings.pilot_tiers),
                tags=frozenset(t.lower() for t in settings.pilot_tags),
                customers=frozenset(settings.pilot_customers),
                max_invoices=settings.pilot_max_invoices,
            ),
            control_share=settings.control_share,
            sender=Sender(settings.business_name, settings.from_email, None),
            attach_invoice_pdf=settings.attach_invoice_pdf,
            undo=timedelta(seconds=settings.undo_seconds),
        )


class DueInvoice(NamedTuple):
    """An invoice with the step due on it. A named tuple, not a dataclass: a plan makes one for
    most of its open invoices."""

    invoice: InvoiceFacts
    step: Step
    days_past_due: int


@dataclass
class PlanItem:
    """One reminder, or one escalation, for one customer on the plan's day."""

    customer: CustomerFacts
    action: str  # "remind" | "escalate"
    step: Step  # the firmest step due
    ladder: str
    due: list[DueInvoice]
    contact: ContactFacts | None = None
    channel: str | None = None
    send_after: datetime | None = None
    auto_approve: bool = False
    escalate_to: str | None = None
    reason: str | None = None  # why a person gets it, for escalations
    message: Rendered | None = None
    language: str | None = None  # the message's language (BCP 47); None: English
    observe_only: bool = False
    control: bool = False  # observed only because the customer is in the control group
    instalment: NextInstalment | None = None  # a payment plan's instalment this reminds of

    def carries_copies(self, by_default: bool) -> bool:
        """Whether its email carries a PDF copy of each invoice: its step's say, else
        `by_default` (ARBOT_ATTACH_INVOICE_PDF); never a text or an escalation."""
        return (
            self.action == "remind"
            and self.channel == "email"
            and self.step.attaches_copies(by_default)
        )


@dataclass(frozen=True)
class Held:
    customer: CustomerFacts
    invoices: list[str]
    reason: str
    detail: str = ""


@dataclass
class Plan:
    day: date
    items: list[PlanItem] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    observed: list[PlanItem] = field(default_factory=list)


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


def day_start(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone))


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
        instalment, reminding = self._instalment_due(customer)
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
            or self._instalment_escalation(customer, due, ladder_name, instalment)
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
            template = item.step.template or ""
            # The contact's language, else the customer's; English when the template has no
            # translation for it (the amounts and dates then follow US English too; a reader of
            # British English gets the English text with British dates).
            wanted = (item.contact.language if item.contact else None) or customer.language
            language = self.renderer.language_for(template, wanted)
            item.language = wanted if language or (wanted and is_english(wanted)) else None
            try:
                item.message = self.renderer.render(
                    template, _context(item, rules, day, link), item.channel, language
                )
            except RenderError as exc:
                plan.held.append(Held(customer, numbers, guardrails.TEMPLATE_ERROR, str(exc)))
                return
            lint = lint_message(item.message, item.language or "en")
            problems = channel_problems(lint, item.channel)
            if problems:  # e.g. a long name pushed the text past 320 characters
                plan.held.append(Held(customer, numbers, guardrails.TEMPLATE_ERROR, problems[0]))
                return
        plan.items.append(item)

    def _instalment_due(
        self, customer: CustomerFacts
    ) -> tuple[NextInstalment | None, list[DueInvoice]]:
        """The playbook's instalment reminder, when the customer's next instalment of a running
        plan falls within the step's days before its date and was not reminded yet."""
        base, day = self.playbook.instalment, self.plan.day
        upcoming = self.history.instalments.get(customer.id)
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
        if not covered or any((i.id, step.key, i.due_date) in self.history.done for i in covered):
            return None, []
        return upcoming, [DueInvoice(i, step, (day - i.due_date).days) for i in covered]

    def _instalment_escalation(
        self,
        customer: CustomerFacts,
        due: list[DueInvoice],
        ladder: str,
        instalment: NextInstalment | None,
    ) -> PlanItem | None:
        """An escalation instead of the instalment's reminder when the frequency cap holds it
        past the instalment's date (today is that date, or the cap lasts beyond it): the customer
        would not be told before the instalment falls due, so a person is."""
        if instalment is None:
            return None
        rules = self.rules
        last = self.history.last_touch.get(customer.id)
        if last is None or not guardrails.too_soon(
            customer, self.history, self.anchor, rules.frequency_cap
        ):
            return None
        after_its_date = day_start(instalment.due_on + timedelta(days=1), rules.business_timezone)
        if self.plan.day < instalment.due_on and last + rules.frequency_cap < after_its_date:
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


def channel_problems(problems: list[str], channel: str | None) -> list[str]:
    """The linter's problems that concern what this channel sends."""
    parts = ("SMS",) if channel == "sms" else ("subject", "text body", "HTML body")
    return [p for p in problems if p.split(":", 1)[0] in parts]


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


def _context(
    item: PlanItem, rules: PlanRules, day: date, payment_link: str | None = None
) -> dict[str, object]:
    invoices = [
        MessageInvoice(
            d.invoice.number,
            d.invoice.issue_date,
            d.invoice.due_date,
            d.invoice.currency,
            d.invoice.total,
            d.invoice.balance,
            d.invoice.payment_link,
        )
        for d in item.due
    ]
    locale = formatting_locale(item.language)
    return message_context(
        customer_name=item.customer.name,
        customer_id=item.customer.external_id,
        contact_name=item.contact.name if item.contact else None,
        invoices=invoices,
        day=day,
        sender=rules.sender,
        payment_link=payment_link,
        instalment=(
            {
                "number": item.instalment.seq,
                "of": item.instalment.count,
                "due_date": long_date(item.instalment.due_on, locale),
                "amount": format_money(item.instalment.owed, item.instalment.currency, locale),
            }
            if item.instalment
            else None
        ),
        language=item.language,
    )
