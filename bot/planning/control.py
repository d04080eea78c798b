"""The randomized holdout (ARBOT_CONTROL_SHARE): a stable random share of the customers in the
pilot's scope is kept observe-only, so that what arbot's follow-up does can be measured against
customers like them that it leaves alone.

* A customer's draw is HMAC-SHA256(installation salt, customer id) read as a number in [0, 1);
  below the share in force puts it in the control group. The salt is drawn once per database and
  kept (`control_holdout`), so the same customer gets the same draw on every run and replica.
* The first plan that meets a customer in the pilot's scope while a holdout runs stores its group
  (`control_assignments`: group, when, the share then). A stored group is never changed: a new
  share applies to customers met afterwards only, and saying so is part of the change (a warning
  in the log and a `control.share_changed` event, named in the report).
* Setting the share back to 0 assigns new customers to the followed group and keeps everyone
  already in the control group there.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, Table, func, select, update
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.bulk_rows import insert_rows
from bot.core.models import ControlAssignment, ControlHoldout, Customer

log = logging.getLogger(__name__)

CONTROL = "control"
FOLLOWED = "followed"
HOLDOUT_ID = 1

# tier, tags, external id -> whether the pilot's scope covers the customer
InScope = Callable[[str, Sequence[str], str], bool]


def draw(salt: str, customer_id: int) -> Decimal:
    """The customer's stable random number in [0, 1), exact to 1/2**64."""
    digest = hmac.new(salt.encode(), str(customer_id).encode(), hashlib.sha256).digest()
    return Decimal(int.from_bytes(digest[:8], "big")) / Decimal(2**64)


def group_for(salt: str, customer_id: int, share: Decimal) -> str:
    return CONTROL if draw(salt, customer_id) < share else FOLLOWED


def holdout(session: Session) -> ControlHoldout | None:
    return session.get(ControlHoldout, HOLDOUT_ID)


def ensure_holdout(session: Session, share: Decimal, now: datetime) -> ControlHoldout:
    """The holdout's row, made (with a new salt) when missing; a share that differs from the one
    in force becomes the one in force from `now`, with a warning and an audit event."""
    row = holdout(session)
    if row is None:
        row = ControlHoldout(
            id=HOLDOUT_ID,
            salt=secrets.token_hex(16),
            share=share,
            share_since=now,
            created_at=now,
        )
        session.add(row)
        session.flush()
        audit.record(session, now, "control.started", payload={"share": str(share)})
        return row
    if row.share != share:
        kept = session.scalar(select(func.count()).select_from(ControlAssignment)) or 0
        log.warning(
            "ARBOT_CONTROL_SHARE changed from %s to %s: the %d customers already assigned keep "
            "their group; only customers met from now on are drawn with the new share",
            row.share,
            share,
            kept,
        )
        audit.record(
            session,
            now,
            "control.share_changed",
            payload={"from": str(row.share), "to": str(share), "kept": kept},
        )
        session.execute(
            update(ControlHoldout)
            .where(ControlHoldout.id == HOLDOUT_ID)
            .values(share=share, share_since=now)
        )
        session.refresh(row)
    return row


@dataclass(frozen=True, slots=True)
class Assigned:
    control: int = 0
    followed: int = 0


def assign_new(session: Session, share: Decimal, now: datetime, in_scope: InScope) -> Assigned:
    """Store a group for every customer in the pilot's scope that has none yet. Nothing happens
    while no holdout ever ran and the share is 0."""
    if share == 0 and holdout(session) is None:
        return Assigned()
    row = ensure_holdout(session, share, now)
    rows: list[tuple[int, str, datetime, Decimal]] = []
    for customer_id, tier, tags, external_id in session.execute(_unassigned()):
        if in_scope(tier, list(tags or []), external_id):
            rows.append((customer_id, group_for(row.salt, customer_id, share), now, share))
    if not rows:
        return Assigned()
    table = ControlAssignment.__table__
    assert isinstance(table, Table)
    insert_rows(session, table, ("customer_id", "grp", "assigned_at", "share"), rows)
    result = Assigned(
        control=sum(1 for r in rows if r[1] == CONTROL),
        followed=sum(1 for r in rows if r[1] == FOLLOWED),
    )
    audit.record(
        session,
        now,
        "control.assigned",
        payload={"share": str(share), "control": result.control, "followed": result.followed},
    )
    return result


def control_members(
    session: Session, share: Decimal | None = None, in_scope: InScope | None = None
) -> dict[int, datetime]:
    """Customer id -> since when it is in the control group. With `share` and `in_scope`, also
    the customers not assigned yet that `assign_new` would put there (since the holdout's share
    took effect), without writing anything: what a read-only first look at the plan needs."""
    members: dict[int, datetime] = dict(
        session.execute(
            select(ControlAssignment.customer_id, ControlAssignment.assigned_at).where(
                ControlAssignment.grp == CONTROL
            )
        ).all()
    )
    row = holdout(session)
    if share is None or in_scope is None or row is None:
        return members
    for customer_id, tier, tags, external_id in session.execute(_unassigned()):
        drawn = in_scope(tier, list(tags or []), external_id)
        if drawn and group_for(row.salt, customer_id, share) == CONTROL:
            members[customer_id] = row.share_since
    return members


def _unassigned() -> Select[int, str, list[str], str]:
    """The customers with no group yet, by id."""
    return (
        select(Customer.id, Customer.tier, Customer.tags, Customer.external_id)
        .outerjoin(ControlAssignment, ControlAssignment.customer_id == Customer.id)
        .where(ControlAssignment.customer_id.is_(None))
        .order_by(Customer.id)
    )


def assignments(session: Session) -> list[ControlAssignment]:
    return list(session.scalars(select(ControlAssignment).order_by(ControlAssignment.customer_id)))


def assignment_of(session: Session, customer_id: int) -> ControlAssignment | None:
    return session.get(ControlAssignment, customer_id)
