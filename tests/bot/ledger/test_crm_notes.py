"""CRM notes through the outbox, against the local HubSpot fake over HTTP: the sweep writes a
sent reminder's note soon after the send, once; a 429 or server error is tried again after a
backoff; a refusal or the last try ends with a message to the finance channel; a note whose
write was interrupted is never written a second time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import CrmNote, Customer, Event, SyncState
from bot.core.runtime import Runtime, start
from bot.core.settings import load_settings
from bot.ledger import crm_notes
from integrations.wiring import crm_openers, slack_for
from scheduler.jobs import sweep_tick
from tests.support.fake_hubspot import TOKEN, FakeHubSpot, company


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot().start()
    fake.companies = [company("101", "Ridgeline Roofing", "ridgeline.example")]
    yield fake
    fake.stop()


@pytest.fixture
def notes_runtime(
    database_url: str, slack_api: Any, hubspot: FakeHubSpot, clock: FixedClock
) -> Iterator[Runtime]:
    settings = load_settings(
        env_file=None,
        database_url=database_url,
        timezone="America/New_York",
        slack_bot_token="xoxb-test",
        slack_api_url=slack_api.url,
        finance_channel="C0FINANCE",
        hubspot_token=TOKEN,
        hubspot_api_url=hubspot.url,
        crm_log_activity=True,
    )
    runtime = start(settings, clock=clock)
    with runtime.writing() as session:
        now = runtime.clock.now()
        session.add(
            Customer(
                source="csv",
                external_id="C-1",
                name="Ridgeline Roofing",
                crm_ref="hubspot:101",
                created_at=now,
                updated_at=now,
            )
        )
        session.add(SyncState(source="hubspot", summary={crm_notes.MARKER: 0}))
    yield runtime
    runtime.close()


def _sent(runtime: Runtime, step: str = "plus7") -> None:
    """What the send leaves in the audit log (the reminder itself is not needed for the note)."""
    with runtime.writing() as session:
        customer = session.scalars(select(Customer)).one()
        session.add(
            Event(
                at=runtime.clock.now(),
                actor="system",
                kind="escalation.opened" if step == "handed" else "reminder.sent",
                customer_id=customer.id,
                payload={"reason": "reply: dispute"} if step == "handed" else {},
            )
        )


def _flush(runtime: Runtime) -> tuple[int, list[str]]:
    return crm_notes.flush(runtime, crm_openers(runtime.settings), slack_for(runtime.settings))


def _notes(runtime: Runtime) -> list[CrmNote]:
    with runtime.sessions() as session:
        return list(session.scalars(select(CrmNote).order_by(CrmNote.id)))


def _told(slack_api: Any) -> list[str]:
    return [c["text"] for c in slack_api.calls("chat.postMessage") if "CRM note" in c["text"]]


def test_the_sweep_writes_a_sent_reminders_note_soon_after_and_only_once(
    notes_runtime: Runtime, hubspot: FakeHubSpot, slack_api: Any
) -> None:
    _sent(notes_runtime)

    done = sweep_tick(notes_runtime, slack_for(notes_runtime.settings))
    sweep_tick(notes_runtime, slack_for(notes_runtime.settings))  # the next sweep: nothing new

    assert "1 CRM note(s) written" in done
    assert len(hubspot.notes) == 1
    assert "payment reminder" in hubspot.notes[0]["properties"]["hs_note_body"]
    [note] = _notes(notes_runtime)
    assert (note.state, note.attempts, note.crm_note_id) == ("written", 1, "90000")


def test_a_server_error_is_tried_again_after_a_backoff_and_written_once(
    notes_runtime: Runtime, hubspot: FakeHubSpot, clock: FixedClock, slack_api: Any
) -> None:
    _sent(notes_runtime, "handed")
    hubspot.server_errors = 1  # a POST is not repeated at once: the outbox tries again later

    assert _flush(notes_runtime) == (0, [])
    [note] = _notes(notes_runtime)
    assert (note.state, note.attempts) == ("pending", 1)
    assert note.next_try_at == clock.now() + crm_notes.BACKOFF_FIRST
    assert _flush(notes_runtime) == (0, [])  # not due yet: no request
    assert len(hubspot.calls("/crm/v3/objects/notes", "POST")) == 1

    clock.advance(crm_notes.BACKOFF_FIRST)
    assert _flush(notes_runtime) == (1, [])

    assert len(hubspot.notes) == 1
    assert "handed the account to a person (reply: dispute)" in str(hubspot.notes[0])
    assert _notes(notes_runtime)[0].state == "written"
    assert _told(slack_api) == []


def test_a_missing_scope_fails_the_note_and_tells_the_finance_channel_which_scope(
    notes_runtime: Runtime, hubspot: FakeHubSpot, slack_api: Any
) -> None:
    hubspot.granted = {"crm.objects.companies.read", "crm.objects.companies.write"}
    _sent(notes_runtime)

    written, failed = _flush(notes_runtime)
    _flush(notes_runtime)

    assert written == 0 and len(failed) == 1
    assert len(hubspot.calls("/crm/v3/objects/notes", "POST")) == 1  # not tried again
    assert _notes(notes_runtime)[0].state == "failed"
    [told] = _told(slack_api)
    assert "Ridgeline Roofing" in told and "crm.objects.contacts.write" in told


def test_after_the_last_try_the_note_is_given_up_and_a_person_is_told(
    notes_runtime: Runtime, hubspot: FakeHubSpot, clock: FixedClock, slack_api: Any
) -> None:
    _sent(notes_runtime)
    hubspot.server_errors = 1000

    for _ in range(crm_notes.MAX_ATTEMPTS):
        _flush(notes_runtime)
        clock.advance(crm_notes.BACKOFF_LAST)

    [note] = _notes(notes_runtime)
    assert (note.state, note.attempts) == ("failed", crm_notes.MAX_ATTEMPTS)
    [told] = _told(slack_api)
    assert "was not written" in told and "try again later" in told
    _flush(notes_runtime)
    assert _notes(notes_runtime)[0].attempts == crm_notes.MAX_ATTEMPTS
    assert hubspot.notes == []


def test_a_note_whose_write_was_interrupted_is_never_written_again(
    notes_runtime: Runtime, hubspot: FakeHubSpot, clock: FixedClock, slack_api: Any
) -> None:
    _sent(notes_runtime)
    with notes_runtime.writing() as session:
        crm_notes.enqueue(session, "hubspot", clock.now())
    with notes_runtime.writing() as session:  # claimed, then the process died in the call
        note = session.scalars(select(CrmNote)).one()
        note.state, note.attempts, note.claimed_at = "writing", 1, clock.now()

    clock.advance(crm_notes.CLAIM_LEASE + timedelta(seconds=1))
    _flush(notes_runtime)
    _flush(notes_runtime)

    assert hubspot.notes == []
    assert _notes(notes_runtime)[0].state == "unknown"
    [told] = _told(slack_api)
    assert "check the company's timeline" in told


def test_with_notes_off_nothing_is_queued_or_written(
    notes_runtime: Runtime, hubspot: FakeHubSpot
) -> None:
    _sent(notes_runtime)
    off = notes_runtime.settings.model_copy(update={"crm_log_activity": False})
    runtime = Runtime.__new__(Runtime)
    runtime.__dict__.update(notes_runtime.__dict__)
    runtime.settings = off

    assert crm_notes.flush(runtime, crm_openers(off), None) == (0, [])
    assert _notes(notes_runtime) == [] and hubspot.notes == []
