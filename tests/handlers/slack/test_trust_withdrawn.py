"""Trust taken back is told in the finance channel at once, end to end: an approver's edit of a
trusted step's draft in Slack (the real ASGI app) or disputes past the bound before `arbot plan`
post one message naming the step in words, why, since when it had trust and that its reminders
need approval again; after the commit, never inside a write; once, whoever else tries; and by
the sweep when Slack refused it."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.core.clock import FixedClock
from bot.core.models import Event, InboundMessage, Reminder
from bot.core.runtime import Runtime
from bot.escalations.sweeps import sweep
from bot.learning.trust import trusted_steps
from bot.learning.trust_notices import notice_text
from bot.planning import posting
from handlers.slack.kit import ListenerKit
from handlers.slack.reminders import tell_trust_withdrawn
from handlers.slack.work_pool import WorkPool
from integrations.slack_chat import SlackChat, web_client
from tests.handlers.posted_plan import state_of
from tests.support.morning_job import morning_job_finished, morning_job_running
from tests.support.slack_requests import wait_for
from tests.support.trusted_step import LATER, LATER_NOW, earn_trust, plan_today
from tests.support.write_watch import WriteWatch

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

TOLD = "Trust taken back"


def trusted_and_posted(runtime: Runtime, slack_api: Any, clock: FixedClock, tmp: Path) -> int:
    """A trusted step's two reminders approved by arbot, their cards in Slack; one's id."""
    ids = earn_trust(runtime, clock, plan_today(runtime, tmp))
    posting.post_plan(runtime, chat(slack_api), "C0FINANCE", LATER)
    return ids[0]


def chat(slack_api: Any) -> SlackChat:
    return SlackChat(web_client("xoxb-test", slack_api.url))


def undo_then_edit(served: Any, slack_api: Any, runtime: Runtime, reminder_id: int) -> None:
    served.click("undo", str(reminder_id))
    wait_for(lambda: state_of(runtime, reminder_id) == "planned")
    served.click("edit", str(reminder_id), trigger_id="trigger-edit")
    view = wait_for(lambda: slack_api.calls("views.open"))[-1]["view"]
    fields = {b.get("block_id"): b for b in view["blocks"]}
    subject = fields["subject"]["element"]["initial_value"]
    body = fields["body"]["element"]["initial_value"] + "\n\nThank you for your business."
    served.submit(
        "edit_reminder",
        view["private_metadata"],
        {
            "subject": {"value": {"type": "plain_text_input", "value": subject}},
            "body": {"value": {"type": "plain_text_input", "value": body}},
        },
    )


def notices(slack_api: Any) -> list[dict[str, Any]]:
    return [c for c in slack_api.calls("chat.postMessage") if TOLD in str(c.get("text"))]


def test_an_edit_of_a_trusted_draft_tells_the_finance_channel_once_after_the_commit(
    slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path, served: Any
) -> None:
    reminder_id = trusted_and_posted(slack_runtime, slack_api, clock, tmp_path)
    undo_then_edit(served, slack_api, slack_runtime, reminder_id)
    (told,) = wait_for(lambda: notices(slack_api))
    wait_for(lambda: len(posted_events(slack_runtime)) == 1)
    sweep(slack_runtime, chat(slack_api))  # the sweep finds it told: not twice
    assert told["channel"] == "C0FINANCE"
    text = told["text"]
    assert text.startswith(
        ":no_entry: *Trust taken back* from the gentle reminder, 3 days late, for strategic "
        "accounts: an approver (U0APPROVER) edited one of its drafts. It had been approved "
        "automatically since 16 Mar 2026. From the next plan its reminders need a person's "
        "approval again"
    )
    assert "step gentle" not in text  # the step in words, not its key
    assert "The one of its reminders approved automatically and not yet sent waits" in text
    assert json.dumps(told.get("blocks")).count(TOLD) == 1
    assert len(notices(slack_api)) == 1
    with slack_runtime.sessions() as session:
        assert trusted_steps(session) == {}
        kinds = list(
            session.scalars(
                select(Event.kind).where(Event.kind.like("trust.notice%")).order_by(Event.id)
            )
        )
    assert kinds == ["trust.notice_posting", "trust.notice_posted"]


def test_a_notice_slack_refused_is_posted_by_the_sweep_after_its_backoff_and_only_once(
    slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path, served: Any
) -> None:
    reminder_id = trusted_and_posted(slack_runtime, slack_api, clock, tmp_path)
    slack_api.fail_next("chat.postMessage", "internal_error")
    undo_then_edit(served, slack_api, slack_runtime, reminder_id)
    wait_for(lambda: len(notices(slack_api)) == 1)  # refused
    wait_for(lambda: posting_claims(slack_runtime) == 1)
    assert trusted_steps_of(slack_runtime) == {}  # taken back all the same
    sweep(slack_runtime, chat(slack_api))  # within the backoff: not yet
    assert len(notices(slack_api)) == 1 and posting_claims(slack_runtime) == 1
    clock.set(clock.now() + timedelta(minutes=3))
    both = [threading.Thread(target=sweep, args=(slack_runtime, chat(slack_api))) for _ in "ab"]
    for thread in both:  # two sweeps at once, as two replicas' would be
        thread.start()
    for thread in both:
        thread.join()
    sweep(slack_runtime, chat(slack_api))
    assert len(notices(slack_api)) == 2  # the refused one and the one Slack took
    assert (posting_claims(slack_runtime), len(posted_events(slack_runtime))) == (2, 1)


def trusted_steps_of(runtime: Runtime) -> dict[Any, Any]:
    with runtime.sessions() as session:
        return trusted_steps(session)


def posting_claims(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return len(
            list(session.scalars(select(Event.id).where(Event.kind == "trust.notice_posting")))
        )


def posted_events(runtime: Runtime) -> list[int]:
    with runtime.sessions() as session:
        return list(session.scalars(select(Event.id).where(Event.kind == "trust.notice_posted")))


def test_the_notice_escapes_what_it_quotes() -> None:
    text = notice_text(
        {
            "ladder": "vip <!channel>/strategic",
            "label": "gentle reminder, 3 days late",
            "why": "an approver (<@U1|x> & co) edited one of its drafts",
            "since": "2026-03-16T13:00:00+00:00",
            "back_to_planned": [1, 2],
        }
    )
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "&lt;@U1|x&gt; &amp; co" in text
    assert "The 2 of its reminders approved automatically and not yet sent wait" in text


def test_disputes_past_the_bound_are_told_after_arbot_plan_posts_and_never_inside_a_write(
    cli: Any,
    runtime: Runtime,
    slack_api: Any,
    clock: FixedClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trusted = earn_trust(runtime, clock, plan_today(runtime, tmp_path))
    with runtime.writing() as session:  # both went out, and both drew a dispute
        session.execute(
            update(Reminder)
            .where(Reminder.id.in_(trusted))
            .values(state="sent", sent_at=LATER_NOW + timedelta(hours=1))
        )
        for reminder_id in trusted:
            reminder = session.get(Reminder, reminder_id)
            assert reminder is not None
            session.add(
                InboundMessage(
                    channel="email",
                    received_at=LATER_NOW + timedelta(hours=2),
                    sender="ap@example.com",
                    raw="-",
                    text="This invoice is wrong.",
                    reminder_id=reminder_id,
                    customer_id=reminder.customer_id,
                    label="dispute",
                )
            )
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": slack_api.url,
        "ARBOT_FINANCE_CHANNEL": "C0FINANCE",
        "ARBOT_NOW": (LATER_NOW + timedelta(days=3)).isoformat(),  # Monday
    }.items():
        monkeypatch.setenv(name, value)
    with WriteWatch() as watch:
        slack_api.on_call = watch.called
        result = cli("plan")
        assert result.code == 0, result.stderr
        again = cli("plan")  # a second run, as a retry would: told already
        assert again.code == 0, again.stderr
    assert watch.breaches == []
    (told,) = notices(slack_api)
    assert told["text"].startswith(
        ":no_entry: *Trust taken back* from the gentle reminder, 3 days late, for strategic "
        "accounts: 2 of its last 2 reminders drew a dispute or an opt-out reply. It had been "
        "approved automatically since 16 Mar 2026."
    )
    posts = slack_api.calls("chat.postMessage")
    assert posts.index(told) > 0  # after the plan's own messages: the plan goes out as one unit
    assert len(posted_events(runtime)) == 1


def test_a_withdrawal_by_an_edit_waits_while_todays_plan_is_going_out(
    slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path, served: Any
) -> None:
    reminder_id = trusted_and_posted(slack_runtime, slack_api, clock, tmp_path)
    morning_job_running(slack_runtime)  # the morning job is posting today's plan
    undo_then_edit(served, slack_api, slack_runtime, reminder_id)
    wait_for(lambda: trusted_steps_of(slack_runtime) == {})
    kit = ListenerKit(
        runtime=slack_runtime,
        slack=chat(slack_api),
        allows=lambda _: True,
        workers=WorkPool(1, "test-work"),
    )
    tell_trust_withdrawn(kit)  # what the edit's work does once it is saved
    assert notices(slack_api) == []  # it would land between the plan's messages

    morning_job_finished(slack_runtime)
    sweep(slack_runtime, chat(slack_api))  # the plan is all in Slack: told now, once
    assert len(notices(slack_api)) == 1
