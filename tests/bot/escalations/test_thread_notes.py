"""A reason added to an escalation already in Slack is told in its thread: owed in the same
transaction as the reason (a `note` row of slack_retries), posted as a thread reply with the
reason in words and outside text escaped, retried with backoff while Slack refuses, and posted
once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import Customer, Escalation, SlackRetry
from bot.core.runtime import Runtime
from bot.escalations import posting, service, thread_notes
from bot.escalations.sweeps import sweep
from bot.ledger.upsert import apply_batch
from bot.reminders import in_doubt
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from tests.support.ledger_files import row, write


def _posted_thread(rt: Runtime, slack_api: Any, tmp_path: Path) -> tuple[int, Escalation]:
    """A customer whose escalation is in Slack, with its history: (customer id, escalation)."""
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", [row()])), rt.clock.now())
        customer_id = session.scalars(select(Customer.id)).one()
        service.open_or_add(session, customer_id, "replied", rt.clock.now())
    posting.post_new(rt, SlackChat(web_client("xoxb-test", slack_api.url)), "C0ESCALATE")
    with rt.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
        session.expunge(escalation)
    assert escalation.slack_thread_ts
    return customer_id, escalation


def _notes(slack_api: Any, thread: Escalation) -> list[str]:
    """What Slack took in the thread, besides the history."""
    return [
        r["params"]["text"]
        for r in slack_api.records("chat.postMessage")
        if r["response"].get("ok")
        and r["params"].get("thread_ts") == thread.slack_thread_ts
        and r["params"].get("text") != "Account history"
    ]


def _owed(rt: Runtime) -> list[SlackRetry]:
    with rt.sessions() as session:
        rows = list(session.scalars(select(SlackRetry).where(SlackRetry.kind == "note")))
        for one in rows:
            session.expunge(one)
        return rows


def test_a_reason_added_to_a_posted_escalation_is_told_in_its_thread_in_words_and_escaped(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    customer_id, thread = _posted_thread(rt, slack_api, tmp_path)

    with rt.writing() as session:
        service.open_or_add(
            session,
            customer_id,
            in_doubt.SEND_UNKNOWN,
            rt.clock.now(),
            detail=in_doubt.detail(7, "email", "the mail server said <!channel> & hung up"),
        )
    owed = _owed(rt)  # owed with the reason, before anything is posted
    assert [(o.channel, o.ts, o.escalation_id) for o in owed] == [
        (thread.slack_channel, thread.slack_thread_ts, thread.id)
    ]

    assert sweep(rt, chat).notes_posted == 1
    [note] = _notes(slack_api, thread)
    assert "Also needs a person" in note and "may or may not have gone out" in note.lower()
    assert "send_unknown" not in note
    assert "&lt;!channel&gt; &amp; hung up" in note and "<!channel>" not in note
    assert _owed(rt) == []
    assert sweep(rt, chat).notes_posted == 0  # once
    assert len(_notes(slack_api, thread)) == 1


def test_a_reason_rolled_back_owes_nothing(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    customer_id, _ = _posted_thread(rt, slack_api, tmp_path)

    with pytest.raises(RuntimeError), rt.writing() as session:
        service.open_or_add(session, customer_id, "sent_after_stop", rt.clock.now())
        raise RuntimeError("the send run died before its commit")

    assert _owed(rt) == []


def test_a_note_slack_refused_is_posted_by_a_later_sweep_exactly_once(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path, clock: Any
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    customer_id, thread = _posted_thread(rt, slack_api, tmp_path)
    with rt.writing() as session:
        service.open_or_add(
            session, customer_id, "card_dispute", rt.clock.now(), detail="disputed at the bank"
        )
    slack_api.fail_next("chat.postMessage", "service_unavailable")

    assert sweep(rt, chat).notes_posted == 0
    assert _notes(slack_api, thread) == []
    [owed] = _owed(rt)
    assert owed.attempts == 1 and owed.last_error == "service_unavailable"
    assert sweep(rt, chat).notes_posted == 0  # waits for its backoff

    clock.advance(timedelta(minutes=2))
    assert sweep(rt, chat).notes_posted == 1
    assert sweep(rt, chat).notes_posted == 0
    notes = _notes(slack_api, thread)
    assert len(notes) == 1 and "disputed at the bank" in notes[0]
    assert _owed(rt) == []


def test_a_retry_posts_only_the_notes_slack_did_not_take(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path, clock: Any
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    customer_id, thread = _posted_thread(rt, slack_api, tmp_path)
    with rt.writing() as session:
        service.open_or_add(session, customer_id, "sent_after_stop", rt.clock.now(), detail="one")
        service.open_or_add(session, customer_id, "send_failed", rt.clock.now(), detail="two")
    slack_api.fail_next("chat.postMessage", "service_unavailable", after=1)

    assert thread_notes.post_owed(rt, chat) == 1  # the first taken, the second refused
    clock.advance(timedelta(minutes=2))
    assert thread_notes.post_owed(rt, chat) == 1
    assert thread_notes.post_owed(rt, chat) == 0
    notes = _notes(slack_api, thread)
    assert len(notes) == 2 and "one" in notes[0] and "two" in notes[1]


def test_a_thread_another_process_is_telling_is_left_to_it_until_its_lease_lapses(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path, clock: Any
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    customer_id, thread = _posted_thread(rt, slack_api, tmp_path)
    with rt.writing() as session:
        service.open_or_add(session, customer_id, "send_failed", rt.clock.now())
        owed = session.scalars(select(SlackRetry).where(SlackRetry.kind == "note")).one()
        owed.next_try_at = rt.clock.now() + timedelta(minutes=10)  # another replica holds it

    assert thread_notes.post_owed(rt, chat) == 0
    clock.advance(timedelta(minutes=11))  # ... and died
    assert thread_notes.post_owed(rt, chat) == 1
    assert len(_notes(slack_api, thread)) == 1


def test_a_reason_added_before_the_escalation_is_in_slack_owes_no_note(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", [row()])), rt.clock.now())
        customer_id = session.scalars(select(Customer.id)).one()
        service.open_or_add(session, customer_id, "replied", rt.clock.now())
        service.open_or_add(session, customer_id, "send_failed", rt.clock.now())
    assert _owed(rt) == []  # the history posted with the escalation tells it


def test_a_reply_added_to_a_posted_escalation_is_quoted_in_its_thread_escaped(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    from bot.core.models import InboundMessage

    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    customer_id, thread = _posted_thread(rt, slack_api, tmp_path)
    with rt.writing() as session:
        reply = InboundMessage(
            channel="email",
            received_at=rt.clock.now(),
            sender="ap@ridgeline.example",
            raw="",
            text="We dispute this <!channel> <https://evil.example|pay here>",
            customer_id=customer_id,
            label="dispute",
        )
        session.add(reply)
        session.flush()
        service.open_or_add(
            session,
            customer_id,
            "reply: dispute",
            rt.clock.now(),
            detail="email from ap@ridgeline.example",
            inbound_id=reply.id,
        )

    assert thread_notes.post_owed(rt, chat) == 1
    [note] = _notes(slack_api, thread)
    assert "reply from ap@ridgeline.example" in note and "> We dispute this" in note
    assert "&lt;!channel&gt;" in note and "<!channel>" not in note and "<https://" not in note


def test_a_reason_added_while_the_escalation_is_being_posted_is_told_in_its_thread(
    slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", [row()])), rt.clock.now())
        customer_id = session.scalars(select(Customer.id)).one()
        service.open_or_add(session, customer_id, "replied", rt.clock.now())

    class ReasonMeanwhile:
        """The real port; a send in doubt is recorded while Slack takes the parent message."""

        def __getattr__(self, name: str) -> Any:
            return getattr(chat, name)

        def post_escalation(self, channel: str, view: Any, **options: Any) -> tuple[str, str]:
            with rt.writing() as session:
                service.open_or_add(
                    session, customer_id, "send_unknown", rt.clock.now(), detail="meanwhile"
                )
            return chat.post_escalation(channel, view, **options)

    [posted] = posting.post_new(rt, ReasonMeanwhile(), "C0ESCALATE")
    with rt.sessions() as session:
        thread = session.get(Escalation, posted)
        assert thread is not None
        session.expunge(thread)

    assert sweep(rt, chat).notes_posted == 1
    [note] = _notes(slack_api, thread)
    assert "may or may not have gone out" in note and "meanwhile" in note
