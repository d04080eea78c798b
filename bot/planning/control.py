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
* `arbot control end` ends the holdout (`end_holdout`): a `control.ended` event says who and
  when, its control group is followed up from the next plan, and nobody is drawn any more. Its
  stored groups stay for the report, which compares the weeks it ran. A later non-zero share
  starts a new holdout with a new salt, so a new draw: the ended one's groups then move to a
  `control.archived` event (the table holds one group per customer) and every customer in the
  scope is drawn afresh.
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

from sqlalchemy import Select, Table, delete, func, select, update
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.bulk_rows import insert_rows
from bot.core.errors import UserError
from bot.core.models import ControlAssignment, ControlHoldout, Customer, Event

log = logging.getLogger(__name__)

CONTROL = "control"
FOLLOWED = "followed"
HOLDOUT_ID = 1
STARTED = "control.started"
ENDED = "control.ended"
ARCHIVED = "control.archived"  # an ended holdout's groups, when a new holdout starts

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


def ensure_holdout(
    session: Session, share: Decimal, now: datetime, *, start_again: bool = True
) -> ControlHoldout:
    """The holdout's row, made (with a new salt) when missing; a share that differs from the one
    in force becomes the one in force from `now`, with a warning and an audit event. After an
    end, a non-zero share starts a new holdout (unless not `start_again`: a dry run's look)."""
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
        audit.record(session, now, STARTED, payload={"share": str(share)})
        return row
    if share > 0 and ended(session) is not None:
        return _start_again(session, row, share, now) if start_again else row
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
    if share == 0 and (holdout(session) is None or ended(session) is not None):
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
    if ended(session) is not None:  # followed up since the end, every one (a new holdout
        return {}  # draws only once a stored plan starts it)
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


# --- ending a holdout -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ended:
    at: datetime
    by: str


def ended(session: Session) -> Ended | None:
    """When and by whom the holdout in force was ended, if it was: the latest of its start and
    end events is an end."""
    event = session.scalars(
        select(Event)
        .where(Event.customer_id.is_(None), Event.kind.in_((STARTED, ENDED)))
        .order_by(Event.id.desc())
        .limit(1)
    ).first()
    if event is None or event.kind != ENDED:
        return None
    return Ended(event.at, event.actor)


def _counts(session: Session) -> dict[str, int]:
    found = dict(
        session.execute(
            select(ControlAssignment.grp, func.count()).group_by(ControlAssignment.grp)
        ).all()
    )
    return {CONTROL: int(found.get(CONTROL, 0)), FOLLOWED: int(found.get(FOLLOWED, 0))}


def end_holdout(session: Session, by: str, now: datetime, configured: Decimal) -> dict[str, int]:
    """End the holdout: its control group is followed up from the next plan and nobody is drawn
    any more; its groups stay for the report. Refused while ARBOT_CONTROL_SHARE is above 0 (the
    next plan would start a new holdout at once). Returns how many were in each group."""
    row = holdout(session)
    if row is None:
        raise UserError("no control group was ever drawn (ARBOT_CONTROL_SHARE): nothing to end")
    already = ended(session)
    if already is not None:
        raise UserError(
            f"the holdout already ended on {already.at:%Y-%m-%d %H:%M} UTC (by {already.by})"
        )
    if configured > 0:
        raise UserError(
            f"ARBOT_CONTROL_SHARE is {configured.normalize():f}: set it to 0 where arbot reads "
            "it (`arbot serve` too) first, or the next plan starts a new holdout at once"
        )
    counts = _counts(session)
    audit.record(
        session,
        now,
        ENDED,
        actor=by,
        payload={
            "started": row.created_at.isoformat(),
            "share": f"{row.share.normalize():f}",
            CONTROL: counts[CONTROL],
            FOLLOWED: counts[FOLLOWED],
        },
    )
    session.execute(
        update(ControlHoldout)
        .where(ControlHoldout.id == HOLDOUT_ID)
        .values(share=0, share_since=now)
    )
    log.info(
        "holdout ended by %s: its %d control customers are followed up from the next plan",
        by,
        counts[CONTROL],
    )
    return counts


def _start_again(
    session: Session, row: ControlHoldout, share: Decimal, now: datetime
) -> ControlHoldout:
    """A non-zero share after an end: a new holdout with a new salt, so a new draw. The ended
    one's groups move to a `control.archived` event, and every customer in scope is drawn anew."""
    stored = assignments(session)
    end = ended(session)
    audit.record(
        session,
        now,
        ARCHIVED,
        payload={
            "started": row.created_at.isoformat(),
            "ended": end.at.isoformat() if end is not None else None,
            "ended_by": end.by if end is not None else None,
            "groups": [
                [a.customer_id, a.grp, a.assigned_at.isoformat(), str(a.share)] for a in stored
            ],
        },
    )
    session.execute(delete(ControlAssignment))
    session.execute(
        update(ControlHoldout)
        .where(ControlHoldout.id == HOLDOUT_ID)
        .values(salt=secrets.token_hex(16), share=share, share_since=now, created_at=now)
    )
    audit.record(session, now, STARTED, payload={"share": str(share), "new_draw": True})
    session.refresh(row)
    log.warning(
        "ARBOT_CONTROL_SHARE %s after the holdout ended: a new holdout starts with a new draw "
        "(the ended one's %d groups are kept in the audit log)",
        share,
        len(stored),
    )
    return row


@dataclass(frozen=True)
class Earlier:
    """A holdout that ended and gave way to a new one: its groups are in a control.archived event."""

    started: datetime
    ended: datetime | None
    ended_by: str | None
    control: int
    followed: int


def earlier_holdouts(session: Session) -> list[Earlier]:
    """The ended holdouts a new one replaced, oldest first."""
    found = []
    for event in session.scalars(
        select(Event).where(Event.customer_id.is_(None), Event.kind == ARCHIVED).order_by(Event.id)
    ):
        payload = event.payload or {}
        rows = payload.get("groups") or []
        end = payload.get("ended")
        found.append(
            Earlier(
                started=datetime.fromisoformat(str(payload.get("started"))),
                ended=datetime.fromisoformat(str(end)) if end else None,
                ended_by=payload.get("ended_by"),
                control=sum(1 for r in rows if r[1] == CONTROL),
                followed=sum(1 for r in rows if r[1] == FOLLOWED),
            )
        )
    return found


@dataclass(frozen=True)
class HoldoutStatus:
    configured: Decimal  # ARBOT_CONTROL_SHARE as set now
    share: Decimal | None  # the share in force (None: no holdout ever ran)
    share_since: datetime | None
    started: datetime | None
    ended: Ended | None
    control: int = 0
    followed: int = 0


def holdout_status(session: Session, configured: Decimal) -> HoldoutStatus:
    row = holdout(session)
    if row is None:
        return HoldoutStatus(configured, None, None, None, None)
    counts = _counts(session)
    return HoldoutStatus(
        configured,
        row.share,
        row.share_since,
        row.created_at,
        ended(session),
        counts[CONTROL],
        counts[FOLLOWED],
    )
