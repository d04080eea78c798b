"""A version per posted Slack message, so that its redraws never go back in time.

Each redraw asked for raises the message's `wanted` count (`ask`). One worker at a time draws a
message: whoever takes its lease (`drawing_since`), claiming the newest version in the same short
write; each later round claims the newest version asked for by compare-and-set (`claim`:
drawn < wanted → drawn = wanted). The state is read only after the claim, so what is sent is at
least as new as every redraw counted in that version, and a redraw whose version is not newer
than the one drawn is dropped. The drawer gives the lease back only when nothing newer was asked
for meanwhile (`release`), else it draws again: many redraws asked for at once become one
chat.update with the latest state, and the last state is always drawn.

A lease lasts LEASE in real time, so a worker that died while drawing holds the message no
longer than that (`abandoned` lists such messages for the sweep). A drawer is known by its lease
(the instant it took or renewed it): one whose drawing outlasted the lease (a chat.update that
Slack's rate limits held up) may have reached Slack after the newer state another worker took
the message over to draw, so it frees no one else's lease, and asks for the message to be drawn
again after its own drawing (`ask`): by the new holder, or by itself when the lease is free."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.core.clock import Clock, SystemClock
from bot.core.db import session_factory, writing_factory
from bot.core.models import MessageVersion

LEASE = timedelta(seconds=60)
# Leases are measured in real time: a clock fixed for a demo (ARBOT_NOW) must not keep a dead
# drawer's lease forever.
REAL_TIME: Clock = SystemClock()


def draw_newest(
    engine: Engine,
    channel: str,
    ts: str,
    draw: Callable[[Session], None],
    clock: Clock = REAL_TIME,
) -> bool:
    """Redraw channel/ts with `draw(session)`, which reads the state it renders from that fresh
    session and sends it to Slack. Returns True when this call drew it (as often as redraws were
    asked for while it drew), False when another worker is drawing it and draws this one too.
    What `draw` raises is raised, after the lease is given back (the caller owes the redraw to
    the sweep)."""
    writes = writing_factory(engine)
    lease = clock.now()
    version = ask(writes, channel, ts, lease)
    if version is None:
        return False
    reads = session_factory(engine)
    while True:
        try:
            with reads() as session:  # read after the claim: as new as every redraw it counts
                draw(session)
        except BaseException:
            give_up(writes, channel, ts, lease)
            raise
        released = release(writes, channel, ts, lease)
        if released:
            return True
        renewed = clock.now()
        version = claim(writes, channel, ts, lease, renewed) if released is False else None
        if version is None:  # the lease lapsed while drawing: another worker holds the message
            renewed = clock.now()
            version = ask(writes, channel, ts, renewed)  # drawn again, after this drawing
            if version is None:
                return True  # by the worker holding it
        lease = renewed


def _this(channel: str, ts: str) -> list[ColumnElement[bool]]:
    return [MessageVersion.channel == channel, MessageVersion.ts == ts]


def _free(now: datetime) -> ColumnElement[bool]:
    return or_(MessageVersion.drawing_since.is_(None), MessageVersion.drawing_since < now - LEASE)


def ask(writes: sessionmaker[Session], channel: str, ts: str, now: datetime) -> int | None:
    """Ask for a redraw of channel/ts. When nobody is drawing it, the caller takes the lease and
    the newest version, in the same write, and must draw it (then `release`, and `claim` again
    while `release` says more was asked); None when another worker is drawing it and will draw
    this redraw too."""
    for _ in range(2):  # two first redraws of a message at once: the second finds the row
        try:
            with writes.begin() as session:
                raised = session.execute(
                    update(MessageVersion)
                    .where(*_this(channel, ts))
                    .values(wanted=MessageVersion.wanted + 1)
                    .execution_options(synchronize_session=False)
                )
                if raised.rowcount == 0:  # type: ignore[attr-defined]
                    session.add(
                        MessageVersion(channel=channel, ts=ts, wanted=1, drawn=1, drawing_since=now)
                    )
                    session.flush()
                    return 1
                taken = session.execute(
                    update(MessageVersion)
                    .where(*_this(channel, ts), _free(now))
                    .values(drawing_since=now, drawn=MessageVersion.wanted)
                    .execution_options(synchronize_session=False)
                )
                if taken.rowcount != 1:  # type: ignore[attr-defined]
                    return None
                return session.scalar(select(MessageVersion.drawn).where(*_this(channel, ts)))
        except IntegrityError:
            continue
    return None


def claim(
    writes: sessionmaker[Session], channel: str, ts: str, lease: datetime, now: datetime
) -> int | None:
    """The version the holder of `lease` draws now: the newest asked for, claimed by
    compare-and-set before the state is read; None when nothing newer than the version drawn
    was asked for, or the lease is no longer this holder's. Claiming renews the lease (to
    `now`, the holder's lease from then on)."""
    with writes.begin() as session:
        claimed = session.execute(
            update(MessageVersion)
            .where(
                *_this(channel, ts),
                MessageVersion.drawing_since == lease,
                MessageVersion.drawn < MessageVersion.wanted,
            )
            .values(drawn=MessageVersion.wanted, drawing_since=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return session.scalar(select(MessageVersion.drawn).where(*_this(channel, ts)))


def release(writes: sessionmaker[Session], channel: str, ts: str, lease: datetime) -> bool | None:
    """Give the holder's `lease` back: True, unless a newer redraw was asked for since the last
    claim (False: the holder draws again) or the lease lapsed and another worker took the
    message over (None: that worker's lease is left alone)."""
    with writes.begin() as session:
        released = session.execute(
            update(MessageVersion)
            .where(
                *_this(channel, ts),
                MessageVersion.drawing_since == lease,
                MessageVersion.drawn >= MessageVersion.wanted,
            )
            .values(drawing_since=None)
            .execution_options(synchronize_session=False)
        )
        if released.rowcount == 1:  # type: ignore[attr-defined]
            return True
        held = session.scalar(
            select(MessageVersion.id).where(
                *_this(channel, ts), MessageVersion.drawing_since == lease
            )
        )
        return False if held is not None else None


def give_up(writes: sessionmaker[Session], channel: str, ts: str, lease: datetime) -> None:
    """Give the holder's `lease` back whatever is still wanted (Slack refused the drawing: the
    redraw is owed to the sweep, which asks again); a lease another worker took over is its."""
    with writes.begin() as session:
        session.execute(
            update(MessageVersion)
            .where(*_this(channel, ts), MessageVersion.drawing_since == lease)
            .values(drawing_since=None)
            .execution_options(synchronize_session=False)
        )


def abandoned(session: Session, now: datetime) -> list[tuple[str, str]]:
    """Messages with a redraw asked for and not drawn, that nobody is drawing (their drawer died
    or gave up): channel and ts, for the sweep."""
    return [
        (channel, ts)
        for channel, ts in session.execute(
            select(MessageVersion.channel, MessageVersion.ts)
            .where(left_undrawn(now))
            .order_by(MessageVersion.id)
        )
    ]


def left_undrawn(now: datetime) -> ColumnElement[bool]:
    """A message with a redraw asked for and not drawn, that nobody is drawing (`now` in real
    time, as leases are)."""
    return and_(MessageVersion.drawn < MessageVersion.wanted, _free(now))
