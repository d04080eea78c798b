"""An escalation whose history Slack refused once is not left with "could not be posted": the
history is owed, and the sweep posts it into the same thread once Slack answers again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.core.models import Customer, Escalation, SlackRetry
from bot.core.runtime import Runtime
from bot.escalations import posting, service
from bot.escalations.sweeps import sweep
from bot.ledger.upsert import apply_batch
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from tests.support.ledger_files import row, write


def _thread_posts(slack_api: Any, thread_ts: str) -> list[dict[str, Any]]:
    return [m for m in slack_api.messages.values() if m.get("thread_ts") == thread_ts]


def test_a_history_slack_refused_is_posted_by_the_sweep_into_the_same_thread(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", [row()])), rt.clock.now())
        customer_id = session.scalars(select(Customer.id)).one()
        escalation, _ = service.open_or_add(session, customer_id, "replied", rt.clock.now())
        escalation_id = escalation.id
    slack_api.server_error_next("chat.postMessage", after=1)  # the parent, then its history

    assert posting.post_new(rt, chat) == [escalation_id]
    with rt.sessions() as session:
        posted = session.get(Escalation, escalation_id)
        assert posted is not None and posted.slack_thread_ts
        thread_ts = posted.slack_thread_ts
        assert session.scalars(select(SlackRetry.kind)).all() == ["history"]
    assert _thread_posts(slack_api, thread_ts) == []  # nothing says it is lost for good

    report = sweep(rt, chat)
    assert report.histories_posted == [escalation_id]
    history = _thread_posts(slack_api, thread_ts)
    assert history and all(m["text"] == "Account history" for m in history)
    assert not any("could not be posted" in m["text"] for m in slack_api.messages.values())
    with rt.sessions() as session:
        assert session.scalars(select(SlackRetry)).all() == []
    assert sweep(rt, chat).histories_posted == []  # posted once
