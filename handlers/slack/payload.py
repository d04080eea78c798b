"""Reading what Slack sent, defensively, in one place: who acted and where, the button they
clicked and what it carries, a form's fields, a command, an event.

A request is signed before any of this runs, but its fields may still not be shaped as Slack
sends them (a bug, a proxy, or someone holding the signing secret). Every reader here either
returns the field as arbot uses it or raises `OddPayload` saying which field is wrong; the Bolt
app (handlers/slack/app.py) answers that in one log line and never with a crash. `unroutable` is
the same for the fields Bolt itself reads to route a request to a listener."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.core.ids import parse_id
from integrations.slack_ids import INPUT, Field

Body = dict[str, Any]  # a request's payload, as Bolt hands it over
ROUTED_TYPES = ("view_submission", "view_closed")


class OddPayload(Exception):
    """A signed request whose fields are not shaped as Slack sends them."""


class OddForm(OddPayload):
    """A form's submission that names nothing arbot made: said in the form itself, on `field`."""

    def __init__(self, why: str, field: Field) -> None:
        super().__init__(why)
        self.field = field


def unroutable(body: Any) -> str | None:
    """Why Bolt could not route `body` to a listener without failing (it indexes these fields as
    Slack shapes them), or None when it can."""
    if not isinstance(body, dict):
        return "the payload is not an object"
    event = body.get("event")
    if event is not None:
        if not isinstance(event, dict):
            return "event is not an object"
        if "type" in event and not isinstance(event["type"], str):
            return "event.type is not text"
        for inner in ("message", "previous_message"):
            if event.get(inner) is not None and not isinstance(event[inner], dict):
                return f"event.{inner} is not an object"
    if "command" in body and not isinstance(body["command"], str):
        return "command is not text"
    if body.get("type") in ROUTED_TYPES and "view" in body:
        view = body["view"]
        if not isinstance(view, dict):
            return "view is not an object"
        if "callback_id" in view and not (
            isinstance(view["callback_id"], str) and isinstance(view.get("type"), str)
        ):
            return "view.callback_id or view.type is not text"
    if body.get("type") in ("block_actions", "interactive_message") and "actions" in body:
        actions = body["actions"]
        if not (isinstance(actions, list) and actions and isinstance(actions[0], dict)):
            return "actions is not a list of objects"
        if not isinstance(actions[0].get("action_id"), str):
            return "actions[0].action_id is not text"
    workflow_step_edit = body.get("type") == "workflow_step_edit" and "callback_id" in body
    if workflow_step_edit and "workflow_step" not in body:
        return "workflow_step is missing"
    return None


def _text(value: Any, where: str) -> str:
    if isinstance(value, str) and value:
        return value
    raise OddPayload(f"{where} is missing or not text")


def text_of(body: Body, key: str) -> str:
    """A field Slack always sends as text, such as `trigger_id`."""
    return _text(body.get(key), key)


def _id_of(value: Any) -> str | None:
    """The `id` of an object such as `{"id": "U0..."}`, when it is one."""
    if isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"]:
        return str(value["id"])
    return None


def record_id(text: Any, where: str) -> int:
    """The id of one of arbot's rows that `text` carries (a button's value, a form's metadata)."""
    found = parse_id(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise OddPayload(f"{where} is not the id of anything arbot made")
    return found


def clicker(body: Body) -> tuple[str, str | None]:
    """Who acted (`user.id`), and in which channel (`channel.id`; None in App Home or a form)."""
    user = _id_of(body.get("user"))
    if user is None:
        raise OddPayload("user.id is missing or not text")
    return user, _id_of(body.get("channel"))


def first_action(body: Body) -> Body:
    """The button a click is about."""
    actions = body.get("actions")
    if not (isinstance(actions, list) and actions and isinstance(actions[0], dict)):
        raise OddPayload("actions is not a list of objects")
    action: Body = actions[0]
    return action


def action_value(body: Body) -> str:
    """The value the clicked button carries (arbot puts what it acts on there)."""
    return _text(first_action(body).get("value"), "actions[0].value")


def clicked(body: Body) -> tuple[str, str | None, int]:
    """Who clicked, in which channel, on what (a button's value is the id of what it acts on)."""
    user, channel = clicker(body)
    return user, channel, record_id(action_value(body), "actions[0].value")


def message_ts(body: Body) -> str | None:
    """The timestamp of the message a button was clicked in (None: not in a message)."""
    message = body.get("message")
    return _plain(message.get("ts")) if isinstance(message, dict) else None


def response_url(body: Body) -> str | None:
    """Where Slack takes an answer to this click (its `response_url`; None when it sends none)."""
    return _plain(body.get("response_url"))


def person_and_place(body: Any) -> tuple[str | None, str | None]:
    """Who a request came from and where, as far as it says: never raises (for telling someone
    that their request failed, whatever shape it had)."""
    if not isinstance(body, dict):
        return None, None
    user, channel = body.get("user"), body.get("channel")
    return (
        _id_of(user) or _plain(user) or _plain(body.get("user_id")),
        _id_of(channel) or _plain(channel) or _plain(body.get("channel_id")),
    )


def _plain(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Submission:
    """A form's submission: what it is about (the id arbot put in `private_metadata`), the
    channel it was opened from, and what was entered."""

    about: int
    channel: str | None
    values: Body


def submission(view: Any, field: Field) -> Submission:
    """Read a submitted form whose `private_metadata` is `<id>|<channel>`; a problem is shown in
    the form on `field`."""
    if not isinstance(view, dict):
        raise OddPayload("view is not an object")
    metadata = view.get("private_metadata")
    about_text, _, channel = metadata.partition("|") if isinstance(metadata, str) else ("", "", "")
    if parse_id(about_text.strip()) is None:
        raise OddForm(
            "This form no longer says what it is about, so nothing was saved. Close it and "
            "open it again from the message.",
            field,
        )
    state = view.get("state")
    values = state.get("values") if isinstance(state, dict) else None
    if not isinstance(values, dict):
        raise OddPayload("view.state.values is not an object")
    return Submission(int(about_text), channel or None, values)


def entered(values: Body, field: Field) -> Body:
    """What a person entered in one field of a form (the input's state, e.g. its `value`); an
    empty entry when the form does not hold the field as Slack shapes it."""
    block = values.get(field)
    entry = block.get(INPUT) if isinstance(block, dict) else None
    return entry if isinstance(entry, dict) else {}


def typed(values: Body, field: Field) -> str | None:
    """The text a person typed in one field of a form (None: nothing, or not text)."""
    return _plain(entered(values, field).get("value"))


def chosen(values: Body, field: Field, key: str) -> str | None:
    """A picked option's value, or a picked date (`key`: `selected_option`, `selected_date`)."""
    picked = entered(values, field).get(key)
    if key == "selected_option":
        picked = picked.get("value") if isinstance(picked, dict) else None
    return _plain(picked)


@dataclass(frozen=True)
class Command:
    """An `/ar` command: who typed it, where, the words after the command, and where Slack takes
    answers to it (its `response_url`: anywhere the command was typed, arbot a member or not)."""

    user: str
    channel: str | None
    text: str
    response_url: str | None = None


def command_of(command: Body) -> Command:
    text = command.get("text")
    if text is not None and not isinstance(text, str):
        raise OddPayload("text is not text")
    return Command(
        _text(command.get("user_id"), "user_id"),
        _plain(command.get("channel_id")),
        _as_typed(text or ""),
        _plain(command.get("response_url")),
    )


def _as_typed(text: str) -> str:
    """What the person typed: Slack sends a command's text with `&`, `<` and `>` escaped (its
    control characters), so `/ar status Smith & Sons` arrives as `Smith &amp; Sons`."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


_CONTROL = re.compile(r"<([^<>]*)>")


_PERSON = re.compile(r"@([UW][A-Z0-9]{2,30})")


@dataclass(frozen=True)
class Written:
    """What a person wrote in a message, as they read it (`text`), and the people Slack
    mentioned in it, each as (where its `@U0ALICE` starts in `text`, the person's id): only
    these are mentions, not an address such as ap@UNITEDFOODS.COM that looks like one."""

    text: str
    mentions: tuple[tuple[int, str], ...] = ()


def message_text(event: Body) -> Written:
    """What a person wrote in a message, as Slack showed it to them: Slack sends `&`, `<` and `>`
    escaped and writes mentions, channels and links as control sequences, which are read back
    here as `@U0ALICE` (a person's id, noted among the mentions: a history mentions them
    again), `@here`, `#finance` and `the transfer (https://…)`."""
    text = _plain(event.get("text")) or ""
    read: list[str] = []
    mentions: list[tuple[int, str]] = []
    length = at = 0
    for found in _CONTROL.finditer(text):
        typed = _as_typed(text[at : found.start()])
        shown = _as_typed(_as_read(found.group(1)))
        person = _PERSON.fullmatch(found.group(1).partition("|")[0])
        if person:
            mentions.append((length + len(typed), person.group(1)))
        read += [typed, shown]
        length += len(typed) + len(shown)
        at = found.end()
    read.append(_as_typed(text[at:]))
    return Written("".join(read), tuple(mentions))


def file_names(event: Body) -> list[str]:
    """The names of the files a message carries (a file without one by its title, else its id)."""
    files = event.get("files")
    if not isinstance(files, list):
        return []
    named = (
        next((f[key] for key in ("name", "title", "id") if _plain(f.get(key))), None)
        for f in files
        if isinstance(f, dict)
    )
    return [str(name) for name in named if name]


def _as_read(sequence: str) -> str:
    """One control sequence (what is between `<` and `>`) as the reader saw it."""
    target, _, label = sequence.partition("|")
    if target.startswith("@"):  # a person: their id, which a history mentions again
        return target
    if target.startswith("#"):
        return f"#{label}" if label else target
    if target.startswith("!"):  # @here, @channel, a user group, a date
        return label or f"@{target[1:].split('^')[-1]}"
    if not label or label in target:
        return label or target.removeprefix("mailto:")
    return f"{label} ({target})"


def event_text(event: Body, key: str) -> str | None:
    """A field of an event that Slack sends as text (None when absent or not text)."""
    return _plain(event.get(key))
