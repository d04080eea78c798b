"""The randomized holdout (ARBOT_CONTROL_SHARE): a stable draw per customer, stored once and never
changed (a new share only reaches new customers, and says so), no automated message for the
control group while an escalation still reaches a person, and `arbot status` naming the group."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import ControlAssignment, ControlHoldout, Customer, Event
from bot.core.runtime import Runtime
from bot.planning.control import CONTROL, FOLLOWED, draw, group_for
from integrations.slack_text import status_text
from tests.bot.planning.test_planner import TODAY, customer, due


def test_the_draw_is_stable_and_puts_about_the_share_in_the_control_group() -> None:
    assert draw("salt", 17) == draw("salt", 17)
    assert draw("salt", 17) != draw("other salt", 17)
    assert all(0 <= draw("salt", n) < 1 for n in range(200))
    share = Decimal("0.1")
    in_control = sum(group_for("salt", n, share) == CONTROL for n in range(1, 20_001))
    assert 1_800 < in_control < 2_200
    # A larger share keeps everyone the smaller one put in the control group (same draws).
    assert all(
        group_for("salt", n, Decimal("0.2")) == CONTROL
        for n in range(1, 2_001)
        if group_for("salt", n, share) == CONTROL
    )


def groups(runtime: Runtime) -> dict[str, tuple[str, Any, Decimal]]:
    with runtime.sessions() as session:
        return {
            external_id: (row.grp, row.assigned_at, row.share)
            for row, external_id in session.execute(
                select(ControlAssignment, Customer.external_id).join(
                    Customer, Customer.id == ControlAssignment.customer_id
                )
            ).all()
        }


def test_control_customers_get_no_reminder_and_are_listed_as_observed(
    load: Any, plan: Any, cli: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_CONTROL_SHARE", "0.3")
    load(*(customer(n, **due(7)) for n in range(1, 41)))
    doc = plan()
    stored = groups(runtime)
    control = {c for c, (group, _, _) in stored.items() if group == CONTROL}
    assert len(stored) == 40
    assert 4 <= len(control) <= 24  # 30% of 40, give or take what a fair draw gives
    assert {r["customer"] for r in doc["reminders"]} == set(stored) - control
    assert {o["customer"] for o in doc["observed"]} == control
    assert all(o["control"] for o in doc["observed"])
    with runtime.sessions() as session:
        assigned = session.scalars(select(Event).where(Event.kind == "control.assigned")).one()
        assert assigned.payload["control"] == len(control)
    shown = cli("plan", "--dry-run").stdout
    assert f"Control group (observed only, ARBOT_CONTROL_SHARE): {len(control)} customers" in shown


def test_the_assignment_is_stored_once_and_a_new_share_only_reaches_new_customers(
    load: Any,
    plan: Any,
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("ARBOT_CONTROL_SHARE", "0.3")
    load(*(customer(n, **due(7)) for n in range(1, 31)))
    plan("--dry-run")
    with runtime.sessions() as session:  # a dry run stores no group, but keeps the salt
        assert session.scalars(select(ControlAssignment)).all() == []
        salt = session.scalars(select(ControlHoldout.salt)).one()
    dry = {o["customer"] for o in plan("--dry-run")["observed"]}
    plan()
    first = groups(runtime)
    assert {c for c, g in first.items() if g[0] == CONTROL} == dry
    plan("--date", (TODAY + timedelta(days=1)).isoformat())
    assert groups(runtime) == first  # another run changes nobody's group

    monkeypatch.setenv("ARBOT_CONTROL_SHARE", "0.5")
    load(*(customer(n, **due(7)) for n in range(1, 61)))  # 30 customers more
    with caplog.at_level(logging.WARNING, logger="bot.planning.control"):
        plan("--date", (TODAY + timedelta(days=2)).isoformat())
    after = groups(runtime)
    assert {c: after[c] for c in first} == first
    new = {c: g for c, g in after.items() if c not in first}
    assert len(new) == 30
    assert {g[2] for g in new.values()} == {Decimal("0.5")}
    assert {g[2] for g in first.values()} == {Decimal("0.3")}
    with runtime.sessions() as session:
        assert session.scalars(select(ControlHoldout.salt)).one() == salt
        changed = session.scalars(select(Event).where(Event.kind == "control.share_changed")).one()
        assert changed.payload == {"from": "0.3000", "to": "0.5", "kept": 30}
    assert "changed from 0.3000 to 0.5" in caplog.text
    assert "keep their group" in caplog.text


def test_only_customers_in_the_pilot_scope_are_drawn(
    load: Any, plan: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_CONTROL_SHARE", "0.5")
    monkeypatch.setenv("ARBOT_PILOT_TAGS", "clinic")
    load(customer(1, tags="clinic", **due(7)), customer(2, tags="contractor", **due(7)))
    plan()
    assert set(groups(runtime)) == {"C-1"}


def test_no_holdout_stores_nothing(load: Any, plan: Any, runtime: Runtime) -> None:
    load(customer(1, **due(7)))
    doc = plan()
    assert [r["customer"] for r in doc["reminders"]] == ["C-1"]
    with runtime.sessions() as session:
        assert session.scalars(select(ControlHoldout)).all() == []
        assert session.scalars(select(ControlAssignment)).all() == []


def control_customers(runtime: Runtime) -> list[str]:
    return sorted(c for c, g in groups(runtime).items() if g[0] == CONTROL)


def test_a_control_customer_past_its_escalation_step_still_reaches_a_person(
    load: Any, plan: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_CONTROL_SHARE", "0.5")
    load(*(customer(n, **due(31)) for n in range(1, 11)))
    doc = plan()
    control = control_customers(runtime)
    assert control
    escalated = {r["customer"] for r in doc["reminders"] if r["action"] == "escalate"}
    assert set(control) <= escalated
    assert not doc["observed"]


def test_status_says_who_is_in_the_control_group_and_since_when(
    load: Any, plan: Any, cli: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_CONTROL_SHARE", "0.5")
    load(*(customer(n, **due(7)) for n in range(1, 11)))
    plan()
    stored = groups(runtime)
    in_control = next(c for c, g in stored.items() if g[0] == CONTROL)
    followed = next(c for c, g in stored.items() if g[0] == FOLLOWED)

    doc = json.loads(cli("status", in_control, "--json").stdout)
    assert doc["control"]["group"] == "control"
    assert doc["control"]["summary"].startswith(
        f"in the control group: observed only since {TODAY.isoformat()}"
    )
    shown = cli("status", in_control)
    assert shown.code == 0
    assert "in the control group: observed only since 2026-03-16" in shown.stdout
    assert json.loads(cli("status", followed, "--json").stdout)["control"]["group"] == FOLLOWED
    slack = status_text(doc, show_amounts=True)  # what /ar status answers an approver
    assert "In the control group: observed only since 2026-03-16" in slack
