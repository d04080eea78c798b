"""Every id Slack sends back to arbot, written once: a button's action_id, a form's callback_id
and the block_id of each block whose value a listener reads. The Block Kit builders
(integrations/slack_*.py) put them into messages and forms; the listeners (handlers/slack/) match
on them and read forms by them. Slack keeps these strings in every message already posted, so
changing one breaks those buttons: they are the public interface, as the slash command is."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from bot.core.ids import parse_id
from bot.core.vocabulary import TIERS
from integrations.base.slack import TEXT_VERSION_LENGTH as VERSION_LENGTH


class Action(StrEnum):
    """A button's action_id."""

    APPROVE = "approve"
    EDIT = "edit"
    SKIP = "skip"
    PREVIEW = "preview"  # a card's full message, in a modal
    SHOW_HELD = "show_held"  # the plan header's list of every customer held back today
    APPROVE_ALL = "approve_all"  # + "_<tier>": one button per tier, in the plan's header
    UNDO = "undo"  # an approved reminder's card, until the send worker takes it
    UNDO_ALL = "undo_all"  # told to whoever clicked Approve all
    ESC_CLAIM = "esc_claim"
    ESC_PROMISE = "esc_promise"
    ESC_DISPUTE = "esc_dispute"
    ESC_RESUME = "esc_resume"
    ESC_RESOLVE = "esc_resolve"
    ESC_PLAN = "esc_plan"  # record a payment plan
    ESC_REOPEN = "esc_reopen"  # a resolved escalation, open again
    ESC_PLAN_CANCEL = "esc_plan_cancel"  # end a running payment plan (Slack asks first)
    ESC_REPLY = "esc_reply"  # write to the customer from the thread
    ESC_SENT = "esc_sent"  # a message sent to the customer, in full, in a modal
    PROPOSAL_APPROVE = "proposal_approve"
    PROPOSAL_REJECT = "proposal_reject"
    GUARDRAIL_APPROVE = "guardrail_approve"  # a guardrail proposed after recurring errors
    GUARDRAIL_DISMISS = "guardrail_dismiss"  # opens a form asking why
    GUARDRAIL_RELEASE = "guardrail_release"  # an approved hold, lifted
    REVIEW_APPLY = "review_apply"  # + "_<n>": one button per candidate payment
    REVIEW_LEAVE = "review_leave"


def approve_all(tier: str) -> str:
    """The action_id of the button that approves a whole tier's waiting reminders."""
    return f"{Action.APPROVE_ALL}_{tier}"


BUTTON_VALUE_LIMIT = 2000  # characters Slack keeps of a button's value
MOST_COVERED = 200_000  # reminders one Approve all may name: more than any day's plan holds
_VERSION = re.compile(rf"[A-Za-z0-9_-]{{{VERSION_LENGTH}}}")  # a message's version, base64url
_VERSIONS = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True)
class Approving:
    """What an Approve button approves: a reminder, as its card showed its message (`version`,
    bot/reminders/shown.py). A button drawn before buttons carried the version has None."""

    reminder_id: int
    version: str | None = None


def approve_value(reminder_id: int, version: str) -> str:
    """An Approve button's value: `<reminder id>|<version of the message its card shows>`."""
    return f"{reminder_id}|{version}"


def approving(value: str) -> Approving:
    """Read an Approve button's value, with or without its version (`<id>`, as Approve buttons
    drawn before carried it); ValueError says what is odd."""
    id_text, bar, version = value.strip().partition("|")
    reminder_id = parse_id(id_text)
    if reminder_id is None:
        raise ValueError("it is not the id of anything arbot made")
    if bar and not _VERSION.fullmatch(version):
        raise ValueError("it names no version of a message")
    return Approving(reminder_id, version if bar else None)


@dataclass(frozen=True)
class Covered:
    """What an Approve all button covers: the day and tier, and the reminders its header showed
    waiting, by id (`ids`) with the version of each one's message as shown (`versions`). Buttons
    drawn before carried less, and still read: the ids without versions, or, when naming them
    would pass Slack's limit on a button's value, every one numbered up to `up_to`, or neither
    (`ids` and `up_to` None)."""

    day: date
    tier: str
    ids: frozenset[int] | None = None
    up_to: int | None = None
    versions: dict[int, str] | None = None  # reminder id -> the version its message had


def _runs(ordered: list[int]) -> str:
    """Ids in ascending order as runs: `3-40.52.60-61`."""
    runs: list[str] = []
    start = previous = None
    for reminder_id in [*ordered, None]:
        if previous is not None and reminder_id == previous + 1:
            previous = reminder_id
            continue
        if start is not None and previous is not None:
            runs.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = reminder_id
    return ".".join(runs)


def approve_all_value(day: date, tier: str, shown: Iterable[tuple[int, str]]) -> tuple[str, int]:
    """An Approve all button's value, `<day>|<tier>|<ids>|<versions>` (the ids as runs, their
    messages' versions one after another in the order of the ids), and how many reminders it
    covers: the first of `shown` (id and version, ascending by id), as many as fit in a
    button's value."""
    pairs = sorted(shown)

    def value(count: int) -> str:
        ids = [reminder_id for reminder_id, _ in pairs[:count]]
        versions = "".join(version for _, version in pairs[:count])
        return f"{day.isoformat()}|{tier}|{_runs(ids)}|{versions}"

    fits, too_many = 0, len(pairs) + 1  # a value grows with each reminder it names
    while too_many - fits > 1:
        middle = (fits + too_many) // 2
        if len(value(middle)) <= BUTTON_VALUE_LIMIT:
            fits = middle
        else:
            too_many = middle
    return value(fits), fits


def covered_by(value: str) -> Covered:
    """Read an Approve all button's value (see `approve_all_value`), or one drawn before buttons
    carried versions; ValueError says what is odd."""
    day_text, _, rest = value.partition("|")
    tier, _, listed = rest.partition("|")
    listed, bar, versions = listed.partition("|")
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        raise ValueError("it does not name a plan's day") from None
    if tier not in TIERS:
        raise ValueError(f"it names no tier ({', '.join(TIERS)})")
    if "|" not in rest:  # drawn before buttons named what they cover
        return Covered(day, tier)
    if listed.startswith("<=") and not bar:
        up_to = parse_id(listed[2:])
        if up_to is None:
            raise ValueError("it names no reminder id")
        return Covered(day, tier, up_to=up_to)
    ids: set[int] = set()
    for run in listed.split(".") if listed else []:
        first_text, _, last_text = run.partition("-")
        first, last = parse_id(first_text), parse_id(last_text or first_text)
        if first is None or last is None or last < first:
            raise ValueError("it names no reminder ids")
        if len(ids) + last - first > MOST_COVERED:
            raise ValueError("it names more reminders than any plan holds")
        ids.update(range(first, last + 1))
    if not bar:  # drawn before buttons carried what each message said
        return Covered(day, tier, ids=frozenset(ids))
    ordered = sorted(ids)
    if len(versions) != VERSION_LENGTH * len(ordered) or not _VERSIONS.fullmatch(versions):
        raise ValueError("it does not name a version of each reminder's message")
    by_id = {
        reminder_id: versions[n * VERSION_LENGTH : (n + 1) * VERSION_LENGTH]
        for n, reminder_id in enumerate(ordered)
    }
    return Covered(day, tier, ids=frozenset(ids), versions=by_id)


@dataclass(frozen=True)
class ApprovedTogether:
    """What an Undo of Approve all takes back: the reminders of a tier's plan on `day` that
    `approved_by` approved with one click, at `approved_at`. An Undo drawn before its value named
    the approver has `approved_by` None."""

    day: date
    tier: str
    approved_at: datetime
    approved_by: str | None = None


def undo_all_value(day: date, tier: str, approved_at: datetime, approved_by: str) -> str:
    """An Undo of Approve all: `<day>|<tier>|<when it approved, ISO 8601 UTC>|<approver>`; it
    takes back every reminder that click approved (the same approver, at that instant)."""
    return f"{day.isoformat()}|{tier}|{approved_at.isoformat()}|{approved_by}"


def undone_by(value: str) -> ApprovedTogether:
    """Read an Undo of Approve all's value, with or without its approver (`<day>|<tier>|<when>`,
    as Undo buttons already posted carry it); ValueError says what is odd."""
    parts = value.split("|")
    if len(parts) not in (3, 4):
        raise ValueError("it does not name a plan's day and an approval's time")
    day_text, tier, at_text = parts[:3]
    try:
        day, at = date.fromisoformat(day_text), datetime.fromisoformat(at_text)
    except ValueError:
        raise ValueError("it does not name a plan's day and an approval's time") from None
    if tier not in TIERS or at.tzinfo is None:
        raise ValueError("it does not name a tier and an approval's time")
    approved_by = parts[3] if len(parts) == 4 else None
    if approved_by == "":
        raise ValueError("it names no approver")
    return ApprovedTogether(day, tier, at, approved_by)


def review_apply(option: int) -> str:
    """The action_id of the button that applies a payment to candidate `option` (from 1)."""
    return f"{Action.REVIEW_APPLY}_{option}"


APPROVE_ALL_ANY = re.compile(rf"^{Action.APPROVE_ALL}_({'|'.join(TIERS)})$")
REVIEW_ANY = re.compile(rf"^({Action.REVIEW_APPLY}_\d+|{Action.REVIEW_LEAVE})$")


class Form(StrEnum):
    """A modal's callback_id. An escalation's form has the id of the button that opens it."""

    EDIT_REMINDER = "edit_reminder"
    SKIP_REMINDER = "skip_reminder"
    ESC_PROMISE = Action.ESC_PROMISE.value
    ESC_DISPUTE = Action.ESC_DISPUTE.value
    ESC_RESOLVE = Action.ESC_RESOLVE.value
    ESC_PLAN = Action.ESC_PLAN.value
    ESC_RESUME = Action.ESC_RESUME.value  # what to clear
    ESC_RESUME_CONFIRM = "esc_resume_confirm"  # the same, confirmed
    ESC_REPLY = Action.ESC_REPLY.value
    GUARDRAIL_DISMISS = Action.GUARDRAIL_DISMISS.value  # why a guardrail is dismissed


class Field(StrEnum):
    """The block_id of a form's input."""

    SUBJECT = "subject"
    BODY = "body"
    REASON = "reason"
    DATE = "date"
    OUTCOME = "outcome"
    NOTE = "note"
    CLEAR = "clear"  # what Resume clears
    PLAN_SCOPE = "plan_scope"  # the invoice a payment plan covers, or the account
    INVOICES = "invoices"
    ATTACH = "attach"  # the invoices whose copies (PDF) a reply from a thread carries


INPUT = "value"  # the action_id of the one input element in each Field block
ALL_INVOICES = "*every open invoice*"  # the value of the choice that stands for all of them


class Row(StrEnum):
    """The block_id of a row of buttons: a prefix and the id of what the row acts on."""

    REMINDER = "reminder_"
    ESCALATION = "esc:"
    PROPOSAL = "proposal_"
    GUARDRAIL = "guardrail_"
    REVIEW = "review:"


APPROVE_ALL_ROW = Action.APPROVE_ALL.value  # the plan header's one row of buttons


def row(prefix: Row, item_id: int) -> str:
    return f"{prefix}{item_id}"
