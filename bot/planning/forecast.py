"""`arbot plan --forecast N`: the touches and escalations each of the next N days brings if nobody
pays, every reminder is approved and sent, and each escalation is handled the day it opens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.orm import Session

from bot.learning.versions import bundle_of, ensure_active
from bot.planning import facts
from bot.planning.planner import PlanRules, compute_plan, day_start


@dataclass
class ForecastDay:
    day: date
    emails: int = 0
    sms: int = 0
    escalations: int = 0
    held: int = 0

    @property
    def touches(self) -> int:
        return self.emails + self.sms


def forecast(session: Session, rules: PlanRules, first_day: date, days: int) -> list[ForecastDay]:
    version = ensure_active(session, day_start(first_day, rules.business_timezone))
    playbook = bundle_of(version).playbook
    customers = facts.load_customers(session)
    history = facts.load_history(session)
    history.pending.clear()  # what is pending today is assumed sent today
    result = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        now = day_start(day, rules.business_timezone)
        plan = compute_plan(customers, history, playbook, rules, day, now)
        today = ForecastDay(day=day, held=len(plan.held))
        for item in plan.items:
            if item.action == "escalate":
                today.escalations += 1
            elif item.channel == "sms":
                today.sms += 1
            else:
                today.emails += 1
            history.planned_days.add((item.customer.id, day))
            for due in item.due:
                history.done.add((due.invoice.id, due.step.key, due.invoice.due_date))
            if item.action == "remind" and item.send_after is not None:
                history.last_touch[item.customer.id] = item.send_after
        result.append(today)
    return result
