"""Every reason the code cancels a reminder with reads as words: on its card (the state line) and
where a click is told why nothing changed ("this reminder was already cancelled ..."). The reasons
are found in the code, so a new one cannot go without its words."""

from __future__ import annotations

import ast
import hashlib
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

import pytest

from bot.core.labels import reason_label, words
from handlers.slack.reminders import CANCELLED_BECAUSE, who_acted
from integrations.base.slack import escape
from integrations.slack_approvals import undo_all_blocks
from integrations.slack_blocks import reminder_blocks
from tests.integrations.test_slack_blocks import card, check_limits
from tests.support.fake_slack import validate_blocks
from tests.support.kept_answer import kept_answer

BOT = Path(__file__).resolve().parents[3] / "bot"

# The calls that cancel a reminder (or ask one being sent to stop), and which of their positional
# arguments is the reason; a `reason`, `changed`, `stop` or `cancel_reason` keyword is one too.
CANCELLERS = {
    "cancel": None,  # bot/reminders/state.py: keyword only
    "_cancel": 2,  # bot/reminders/outbox.py
    "cancel_waiting": 2,  # bot/ledger/accounts.py
    "cancel_waiting_texts": 2,
    "cancel_waiting_to": 3,  # bot/ledger/accounts.py: after the contacts and the channel
    "cancel_for_invoices": None,  # bot/payments/record.py: `changed`
    "Refusal": 0,  # bot/reminders/attaching.py
    "Hold": None,  # bot/reminders/turns.py: `stop`
}
REASON_NAMES = {"reason", "changed", "stop", "cancel_reason"}


def _strings(node: ast.expr, known: dict[str, str]) -> set[str]:
    """The text a reason argument holds: a literal, or a module's constant named."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Name) and node.id in known:
        return {known[node.id]}
    return set()


def _constants(tree: ast.Module) -> dict[str, str]:
    """A module's NAME = "text" assignments."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    found[target.id] = node.value.value
    return found


def _looped(tree: ast.Module, name: str, known: dict[str, str]) -> set[str]:
    """What a loop variable takes from a literal tuple: `for reason in ("a", B)`, or
    `for changed, ids in (("a", x), ...)`."""
    found: set[str] = set()
    for loop in ast.walk(tree):
        if not isinstance(loop, ast.For) or not isinstance(loop.iter, ast.Tuple | ast.List):
            continue
        if isinstance(loop.target, ast.Name) and loop.target.id == name:
            for element in loop.iter.elts:
                found |= _strings(element, known)
        elif isinstance(loop.target, ast.Tuple):
            at = [i for i, t in enumerate(loop.target.elts) if getattr(t, "id", None) == name]
            for element in loop.iter.elts:
                if at and isinstance(element, ast.Tuple) and len(element.elts) > at[0]:
                    found |= _strings(element.elts[at[0]], known)
    return found


@cache
def cancel_reasons() -> frozenset[str]:
    """Every reason the code in bot/ can cancel a reminder with (read once: collecting the
    cases reads it too).

    The search parses the whole of bot/ (1.7 s of CPU), and each test process collecting the
    cases did it again. Its answer depends only on bot/'s files and this module's, so it is
    kept in the temporary folder with a digest of both: the processes of one run wait for the
    first to search, and a later run over the same code reads the answer; a file changed, added
    or removed anywhere in bot/ is another digest, and a new search."""
    sources = {path: path.read_bytes() for path in sorted(BOT.rglob("*.py"))}
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for path, source in sources.items():
        digest.update(f"\0{path.relative_to(BOT)}\0{len(source)}\0".encode())
        digest.update(source)
    reasons = kept_answer(
        "arbot-cancel-reasons.json", digest.hexdigest(), lambda: sorted(_search(sources))
    )
    return frozenset(reasons)


def _search(sources: dict[Path, bytes]) -> frozenset[str]:
    """The search itself, over each module's text."""
    modules = {path: ast.parse(source) for path, source in sources.items()}
    everywhere: dict[str, str] = {}
    for tree in modules.values():
        everywhere.update(_constants(tree))
    reasons: set[str] = set()
    for path, tree in modules.items():
        known = {**everywhere, **_constants(tree)}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name in CANCELLERS:
                named = node.args.args[-len(node.args.defaults) :] if node.args.defaults else []
                for arg, default in zip(named, node.args.defaults, strict=True):
                    if arg.arg in REASON_NAMES:
                        reasons |= _strings(default, known)
            if not isinstance(node, ast.Call):
                continue
            called = getattr(node.func, "attr", getattr(node.func, "id", None))
            given = [k.value for k in node.keywords if k.arg in REASON_NAMES]
            if called in CANCELLERS and CANCELLERS[called] is not None:
                position = CANCELLERS[called]
                assert position is not None
                given += node.args[position : position + 1]
            elif called not in CANCELLERS:
                given = [k.value for k in node.keywords if k.arg == "cancel_reason"]
            for value in given:
                reasons |= _strings(value, known)
                if isinstance(value, ast.Name):
                    reasons |= _looped(tree, value.id, known)
        if path.name == "stale.py":  # why_stale: what `_reason` returns, and CHANGED_SINCE
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef) and node.name == "_reason":
                    for ret in ast.walk(node):
                        if isinstance(ret, ast.Return) and ret.value is not None:
                            reasons |= _strings(ret.value, known)
                if isinstance(node, ast.Dict):
                    for value in node.values:
                        reasons |= _strings(value, known)
    return frozenset(reasons)


def test_the_search_finds_the_reasons_each_way_the_code_cancels() -> None:
    found = cancel_reasons()
    assert {
        "paid",  # bot/reminders/stale.py returns it
        "due_date_changed",  # its CHANGED_SINCE, and a ledger import's loop
        "superseded",  # cancel_for_invoices' default
        "no_sms_consent",  # a constant imported from bot/planning/guardrails.py
        "no_send_window",  # outbox's _cancel
        "message_too_large",  # attaching's Refusal
        "plan_cancelled",  # state.cancel(reason=...)
        "replied",  # cancel_waiting
    } <= found


@pytest.mark.parametrize("reason", sorted(cancel_reasons()))
def test_every_cancel_reason_reads_as_words_on_the_card_and_when_a_click_is_refused(
    reason: str,
) -> None:
    kit: object = None  # who_acted reads nothing from the kit
    assert reason in CANCELLED_BECAUSE, f"no words for a reminder cancelled as {reason}"
    told = who_acted(kit, "cancelled", None, reason)  # type: ignore[arg-type]
    assert told == f"cancelled {CANCELLED_BECAUSE[reason]}"
    label = reason_label(reason)
    assert label != words(reason) or "_" not in reason, f"no label for {reason}"
    blocks = reminder_blocks(card(7, state="cancelled", acted_at="10:02 EDT", note=reason))
    check_limits(blocks)
    assert validate_blocks(blocks) == []
    assert f"at 10:02 EDT: {escape(label)}" in str(blocks)
    if "_" in reason:
        assert reason not in str(blocks)


def test_an_approve_all_that_cancelled_for_every_reason_stays_within_slacks_limits() -> None:
    why = "; ".join(CANCELLED_BECAUSE[r] for r in sorted(CANCELLED_BECAUSE))
    text = f"Approved 300 standard reminders: none goes out before 10:02 EDT.\n{why}."
    blocks = undo_all_blocks(
        text, date(2026, 3, 16), "standard", datetime(2026, 3, 16, tzinfo=UTC), "U0APPROVER"
    )
    check_limits(blocks)
    assert validate_blocks(blocks) == []
    assert blocks[0]["text"]["text"] == text  # nothing cut
