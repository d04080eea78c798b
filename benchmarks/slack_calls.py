"""Slack Web API calls per planned reminder, for a morning's plan posted to the finance channel and
then approved through the real app (signed clicks to the served ASGI app, against the recording
fake of the Web API): by one *Approve all* per tier, and by one Approve per card. Every Web API
call a morning makes counts: the posts, and the redraws of cards and header. Shown beside them,
not counted: the app's auth.test (Bolt checks the token once per process, at its first request,
so a served app makes it once for many mornings), and the answers posted at the clicks'
response_urls (what the clicker is told, with its Undo: Slack's webhook for answering a click,
not a Web API method; chat.postEphemeral, counted, only when Slack refuses it there). Counted,
not timed, so a busy machine changes nothing; the figures say where the calls go.

On a 50-reminder morning in three tiers the plan is posted as a header and four messages of cards
(16 fit in a message, three blocks each, so the tiers of 17, 17 and 16 span two messages each):
5 posts. The three clicks, one after the other, are applied before their redraws start
(handlers/slack/redraw_queue.py), so the header and each message are redrawn once: 5 updates,
10 calls, 0.2 a reminder, the floor with cards drawn as they are. Were each click redrawn on its
own it would be 3 header redraws and 6 of messages (0.28). At 500: 33 posts and about 35
updates (0.14). Approving each card of the 50: 5 posts and 6 to 11 updates (0.22 to 0.32)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from benchmarks.books import TODAY, one_invoice_each
from benchmarks.databases import SQLITE, database, open_runtime
from benchmarks.options import Options
from benchmarks.results import CALLS, Result
from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.core.vocabulary import TIERS
from bot.ledger.sample import write_csv
from bot.ledger.upsert import apply_batch
from bot.planning.flows import plan_day
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from tests.support.fake_slack import FakeSlack
from tests.support.serving import serve
from tests.support.slack_requests import SIGNING_SECRET, SlackRequests

MORNING = 50  # the reminders of the morning a finance person clears
BUSY_MORNING = 500
GOAL = 0.2  # calls per planned reminder, for the Approve all morning
FINANCE = "C0FINANCE"
PATIENCE_SECONDS = 120.0
QUIET_SECONDS = 0.5  # no further call for this long once everything shows approved
# Bolt checks the bot token once per process, at the app's first request (its
# SingleTeamAuthorization): a served app answers many mornings with that one call.
PER_PROCESS = "auth.test"


def _planned(runtime: Runtime, options: Options, reminders: int) -> None:
    rows = one_invoice_each(reminders, 7, tiers=tuple(TIERS))
    batch = read_ledger_csv(write_csv(options.folder / f"slack-calls-{reminders}.csv", rows))
    with runtime.writing() as session:
        apply_batch(session, batch, runtime.clock.now())


def _waiting(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(
            session.scalar(select(func.count(Reminder.id)).where(Reminder.state == "planned")) or 0
        )


def _buttons(fake: FakeSlack, prefix: str) -> list[dict[str, Any]]:
    """The buttons of the finance channel's messages as Slack shows them now."""
    found = []
    for message in fake.messages.values():
        if message["channel"] != FINANCE:
            continue
        for block in message.get("blocks") or []:
            elements = block.get("elements") or [block.get("accessory") or {}]
            found += [e for e in elements if str(e.get("action_id", "")).startswith(prefix)]
    return found


def _told(fake: FakeSlack) -> int:
    """How many ephemeral answers reached whoever clicked, either way."""
    answered = [r for r in fake.responses("ephemeral") if r["status"] == 200]
    return len(answered) + len(fake.records("chat.postEphemeral"))


def _settled(fake: FakeSlack, runtime: Runtime, told: int) -> None:
    """Wait until every reminder is approved in the database and in Slack (no Approve button
    left on a card or in the header), whoever clicked told what they are told, and no call came
    for QUIET_SECONDS."""
    deadline = time.monotonic() + PATIENCE_SECONDS

    def done() -> bool:
        return _waiting(runtime) == 0 and not _buttons(fake, "approve") and _told(fake) >= told

    def heard() -> int:
        return len(fake.records()) + len(fake.responses())

    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError("the approvals did not reach Slack in time")
        time.sleep(0.02)
    seen, quiet_since = heard(), time.monotonic()
    while time.monotonic() - quiet_since < QUIET_SECONDS:
        time.sleep(0.05)
        if heard() != seen:
            seen, quiet_since = heard(), time.monotonic()


def _morning(
    options: Options, reminders: int, approve: Callable[[SlackRequests, FakeSlack], int]
) -> tuple[float, str]:
    """Plan and post a morning of `reminders`, approve it with `approve` (which returns how many
    ephemeral answers its clicks get); calls per reminder, and where they went."""
    fake = FakeSlack(token="xoxb-test", members=["U0APPROVER"]).start()
    try:
        with database(SQLITE, options.folder, f"slack-calls-{reminders}") as url:
            runtime = open_runtime(
                url,
                slack_bot_token="xoxb-test",
                slack_signing_secret=SIGNING_SECRET,
                slack_api_url=fake.url,
                finance_channel=FINANCE,
                approvers=["U0APPROVER"],
            )
            try:
                _planned(runtime, options, reminders)
                chat = SlackChat(web_client("xoxb-test", fake.url))
                plan_day(runtime, TODAY, links=None, slack=chat)
                if _waiting(runtime) != reminders:
                    raise RuntimeError(f"{_waiting(runtime)} reminders planned, not {reminders}")
                posting = Counter(r["method"] for r in fake.records())
                with serve(runtime) as app_url:
                    slack = SlackRequests(app_url, response_urls=fake.response_url)
                    try:
                        told = approve(slack, fake)
                        _settled(fake, runtime, told)
                    finally:
                        slack.close()
                approving = Counter(r["method"] for r in fake.records()) - posting
                answers = Counter(r["kind"] for r in fake.responses())
            finally:
                runtime.close()
    finally:
        fake.stop()
    per_process = approving.pop(PER_PROCESS, 0)
    total = sum(posting.values()) + sum(approving.values())
    note = (
        f"{sum(posting.values())} calls to post ({_methods(posting)}), "
        f"{sum(approving.values())} to approve ({_methods(approving)}); "
        f"not counted: {per_process} {PER_PROCESS} (once per process), "
        f"{sum(answers.values())} answers at response_urls ({_methods(answers) or 'none'}), "
        "which are not Web API calls"
    )
    return total / reminders, note


def _methods(calls: Counter[str]) -> str:
    return ", ".join(f"{n} {method}" for method, n in sorted(calls.items()))


def by_approve_all(slack: SlackRequests, fake: FakeSlack) -> int:
    """One Approve all per tier, as the header shows them."""
    buttons = _buttons(fake, "approve_all_")
    for button in buttons:
        answer = slack.click(button["action_id"], button["value"])
        if answer.status_code != 200:
            raise RuntimeError(f"Approve all answered {answer.status_code}")
    return len(buttons)  # each clicker is told what was approved, with an Undo


def by_single_approvals(slack: SlackRequests, fake: FakeSlack) -> int:
    """One Approve per card."""
    for button in _buttons(fake, "approve"):
        if button["action_id"] != "approve":
            continue
        answer = slack.click("approve", button["value"])
        if answer.status_code != 200:
            raise RuntimeError(f"Approve answered {answer.status_code}")
    return 0  # an approval that changed something is shown on its card, not told


def run(options: Options) -> list[Result]:
    if SQLITE not in options.databases:
        return []
    results = []
    for reminders in (MORNING, BUSY_MORNING):
        per_reminder, note = _morning(options, reminders, by_approve_all)
        results.append(
            Result(
                "Slack calls: post the plan, Approve all per tier",
                SQLITE,
                f"{reminders:,} reminders, 3 tiers",
                per_reminder,
                unit=CALLS,
                target=GOAL,
                note=note,
            )
        )
    singles, singles_note = _morning(options, MORNING, by_single_approvals)
    results.append(
        Result(
            "Slack calls: post the plan, approve each card",
            SQLITE,
            f"{MORNING} reminders, 3 tiers",
            singles,
            unit=CALLS,
            note=singles_note,
        )
    )
    return results
