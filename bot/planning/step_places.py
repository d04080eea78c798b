"""Where a reminder's step sits in its customer's ladder: its day (counted from the due date) and
its place among the ladder's reminders, so the plan's cards say "second reminder, 7 days late"
rather than the step's key. Read from the playbook version that wrote the reminder."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.models import Customer, PlaybookVersion, Reminder
from playbooks.loader import Bundle
from playbooks.model import Playbook


@lru_cache(maxsize=8)
def _playbook(content: str) -> Playbook:
    return Bundle.from_json(content, "playbook").playbook


def step_place(playbook: Playbook, tier: str, tags: list[str], key: str) -> tuple[int, int] | None:
    """(offset in days, place among the ladder's reminders from 1) of step `key`; None when the
    customer's ladder has no such step. An escalation step's place is that of the reminder
    before it."""
    _, ladder = playbook.ladder_for(tier, tags)
    reminders = 0
    for step in ladder:
        if step.action == "remind":
            reminders += 1
        if step.key == key:
            return step.offset_days, max(reminders, 1)
    return None


def step_places(
    session: Session, reminders: list[Reminder], customers: dict[int, Customer]
) -> dict[int, tuple[int, int]]:
    """Reminder id -> (offset, place) for those whose playbook version knows their step."""
    versions = {r.playbook_version_id for r in reminders if r.playbook_version_id is not None}
    contents = dict(
        session.execute(
            select(PlaybookVersion.id, PlaybookVersion.content).where(
                PlaybookVersion.id.in_(versions)
            )
        ).all()
    )
    places = {}
    for reminder in reminders:
        version = reminder.playbook_version_id
        content = contents.get(version) if version is not None else None
        customer = customers.get(reminder.customer_id)
        if content is None or customer is None:
            continue
        try:
            place = step_place(
                _playbook(content), customer.tier, list(customer.tags or []), reminder.step_key
            )
        except (KeyError, ValueError):  # a tier the version has no ladder for
            continue
        if place is not None:
            places[reminder.id] = place
    return places
