"""`arbot control status` and `arbot control end`: ending the randomized holdout follows its
control group up from the next plan, says who and when in the audit log, keeps its groups for the
report, and a later non-zero share starts a new holdout with a new draw."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import ControlHoldout, Customer, Event
from bot.core.runtime import Runtime
from bot.learning.comparison import Unavailable, compare
from bot.planning.control import CONTROL
from tests.bot.planning.test_control import groups
from tests.bot.planning.test_planner import TODAY, customer, due


def in_control(runtime: Runtime) -> set[str]:
    return {c for c, (group, _, _) in groups(runtime).items() if group == CONTROL}


def events(runtime: Runtime, kind: str) -> list[Event]:
    with runtime.sessions() as session:
        return list(session.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def test_ending_the_holdout_follows_its_control_group_up_from_the_next_plan_and_says_who(
    load: Any, plan: Any, cli: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_CONTROL_SHARE", "0.3")
    load(*(customer(n, **due(7)) for n in range(1, 41)))
    plan()
    control = in_control(runtime)
    assert control
    shown = cli("control", "status")
    assert shown.code == 0, shown.stderr
    assert "The holdout runs since 2026-03-16: share 0.3 since 2026-03-16 14:00 UTC" in (
        shown.stdout
    )
    assert f"control: {len(control)} customers (observed only)" in shown.stdout
    assert f"followed: {40 - len(control)} customers" in shown.stdout

    refused = cli("control", "end", "--by", "alice")  # the next plan would start a new one
    assert refused.code == 1
    assert "ARBOT_CONTROL_SHARE is 0.3: set it to 0" in refused.stderr
    assert events(runtime, "control.ended") == []

    monkeypatch.setenv("ARBOT_CONTROL_SHARE", "0")
    ended = cli("control", "end", "--by", "alice")
    assert ended.code == 0, ended.stderr
    assert f"the {len(control)} customers of its control group are followed up" in ended.stdout
    (event,) = events(runtime, "control.ended")
    assert event.actor == "alice" and event.at.isoformat().startswith("2026-03-16T14:00")
    assert (event.payload["control"], event.payload["share"]) == (len(control), "0.3")

    doc = plan("--date", (TODAY + timedelta(days=1)).isoformat())
    assert not any(o.get("control") for o in doc["observed"])
    assert control <= {r["customer"] for r in doc["reminders"]}
    assert in_control(runtime) == control  # the ended holdout's groups stay for the report

    status = json.loads(cli("control", "status", "--json").stdout)
    assert status["ended"]["by"] == "alice"
    assert status["groups"] == {"control": len(control), "followed": 40 - len(control)}
    shown = cli("control", "status").stdout
    assert "The holdout ended on 2026-03-16 14:00 UTC (by alice)" in shown
    member = sorted(control)[0]
    summary = json.loads(cli("status", member, "--json").stdout)["control"]["summary"]
    assert summary.endswith("until the holdout ended on 2026-03-16; followed up since")

    again = cli("control", "end", "--by", "bob")
    assert again.code == 1 and "the holdout already ended on 2026-03-16" in again.stderr


def test_the_end_is_recorded_with_the_os_user_when_no_name_is_given(
    load: Any, plan: Any, cli: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_CONTROL_SHARE", "0.5")
    load(*(customer(n, **due(7)) for n in range(1, 11)))
    plan()
    monkeypatch.setenv("ARBOT_CONTROL_SHARE", "0")
    monkeypatch.setenv("LOGNAME", "carol")
    assert cli("control", "end").code == 0
    assert [e.actor for e in events(runtime, "control.ended")] == ["carol"]


def test_nothing_to_end_when_no_holdout_ever_ran(cli: Any) -> None:
    assert "No control group was ever drawn (ARBOT_CONTROL_SHARE is 0)." in (
        cli("control", "status").stdout
    )
    refused = cli("control", "end", "--by", "alice")
    assert refused.code == 1 and "no control group was ever drawn" in refused.stderr


def test_a_later_share_starts_a_new_holdout_with_a_new_draw_and_keeps_the_ended_groups(
    load: Any, plan: Any, cli: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_CONTROL_SHARE", "0.3")
    load(*(customer(n, **due(7)) for n in range(1, 31)))
    plan()
    first = groups(runtime)
    with runtime.sessions() as session:
        salt = session.scalars(select(ControlHoldout.salt)).one()
    monkeypatch.setenv("ARBOT_CONTROL_SHARE", "0")
    assert cli("control", "end", "--by", "alice").code == 0
    load(*(customer(n, **due(7)) for n in range(1, 36)))  # five customers more
    plan("--date", (TODAY + timedelta(days=1)).isoformat())
    assert groups(runtime) == first  # an ended holdout draws nobody

    monkeypatch.setenv("ARBOT_CONTROL_SHARE", "0.5")
    plan("--dry-run", "--date", (TODAY + timedelta(days=2)).isoformat())
    assert groups(runtime) == first and events(runtime, "control.archived") == []  # a look only
    plan("--date", (TODAY + timedelta(days=2)).isoformat())
    after = groups(runtime)  # everyone in the scope drawn afresh, at the new share
    assert len(after) == 35 and {g[2] for g in after.values()} == {Decimal("0.5")}
    assert events(runtime, "control.assigned")[-1].payload["control"] == len(
        {c for c, g in after.items() if g[0] == CONTROL}
    )
    with runtime.sessions() as session:
        assert session.scalars(select(ControlHoldout.salt)).one() != salt  # a new draw
        ids = dict(session.execute(select(Customer.external_id, Customer.id)).all())
    (archived,) = events(runtime, "control.archived")
    kept = {row[0]: row[1] for row in archived.payload["groups"]}
    assert kept == {ids[c]: g[0] for c, g in first.items()}
    assert [e.payload.get("new_draw") for e in events(runtime, "control.started")] == [None, True]
    shown = cli("control", "status").stdout
    assert "The holdout runs since 2026-03-16: share 0.5" in shown  # the clock stands still
    with runtime.sessions() as session:  # the report compares the new one, naming the ended one
        found = compare(session, TODAY, TODAY + timedelta(days=7), timezone="America/New_York")
    assert not isinstance(found, Unavailable), found
    assert (
        "An earlier holdout ran from 2026-03-16 to 2026-03-16 (ended by alice), "
        f"{len([g for g in first.values() if g[0] == CONTROL])} in its control group"
    ) in " ".join(found.notes)
