"""The SlackPort over slack_sdk's WebClient: base URL from SLACK_API_URL. It waits out 429s,
retries a connection that failed before the call reached Slack, and retries a server error (500,
503) or an answer lost on the way back (the connection dropped after the call was sent) on the
calls that may be repeated safely (chat.update, views and reads); a post that met either is left
to the caller, since Slack may have posted it. A plan's header and card messages, and an
escalation's parent message, carry what they are as metadata (the day and workspace, the
reminders, the escalation), so that a post after one that met such an error first finds any Slack
took though its answer was lost, instead of posting it twice. Every failure, a Slack that cannot
be reached included, reaches the core as SlackFailed."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from datetime import date
from http.client import HTTPException
from typing import Any, TypeVar
from urllib.error import URLError
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.slack_response import SlackResponse
from slack_sdk.webhook import WebhookClient

from integrations.base.mrkdwn import escape
from integrations.base.slack import (
    EscalationView,
    GuardrailView,
    PlanSummary,
    PostedGroup,
    PostedPlan,
    ProposalView,
    ReminderCard,
    ReviewView,
    Tag,
)
from integrations.errors import SlackFailed
from integrations.slack_blocks import (
    group_blocks,
    group_text,
    pack,
    plan_header_blocks,
    text_blocks,
)
from integrations.slack_escalation import escalation_blocks, escalation_text, history_messages
from integrations.slack_guardrail import guardrail_blocks, guardrail_text
from integrations.slack_proposal import proposal_blocks, proposal_text
from integrations.slack_review import review_blocks, review_text

log = logging.getLogger(__name__)
REPEATABLE = ("chat.update", "views.", "conversations.", "auth.test", "users.")
# Where Slack's response_urls point (a click's answer is posted there, not to the Web API).
RESPONSE_HOSTS = ("hooks.slack.com", "hooks.slack-gov.com")
RESPONSE_TIMEOUT_SECONDS = 10


def _repeatable(request: HttpRequest) -> bool:
    return request.url.rsplit("/", 1)[-1].startswith(REPEATABLE)


class RepeatableServerErrors(ServerErrorRetryHandler):
    """Retry a 500 or 503 only where sending the call twice does no harm."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return bool(
            _repeatable(request)
            and super()._can_retry(state=state, request=request, response=response, error=error)
        )


class RepeatableConnectionErrors(ConnectionErrorRetryHandler):
    """Retry a call whose connection failed before it reached Slack (urllib's URLError: no
    connection, or the request could not be sent). A call whose connection dropped after it was
    sent (Slack may have done it: a post would be posted twice) is retried only where sending it
    twice does no harm."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if not (isinstance(error, URLError) or _repeatable(request)):
            return False
        return bool(
            super()._can_retry(state=state, request=request, response=response, error=error)
        )


class GuardedWebClient(WebClient):
    """A client that first asks `refusal` whether Slack may be called at all (the app was
    uninstalled, its token revoked: bot.core.slack_access); if not, no call is made and the caller
    meets a Slack error `token_revoked`, as from Slack itself, with a log line."""

    def __init__(self, *, refusal: Callable[[], str | None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.refusal = refusal

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:
        why = self.refusal()
        if why is not None:
            log.warning("Slack %s not called: %s", api_method, why)
            raise SlackFailed(f"not called: {why}", {"ok": False, "error": "token_revoked"})
        return super().api_call(api_method, **kwargs)


def web_client(
    token: str, base_url: str, refusal: Callable[[], str | None] | None = None
) -> WebClient:
    """A client that waits out Slack's rate limits (Retry-After) instead of losing a call, and
    with `refusal`, makes no call while it gives a reason."""
    options: dict[str, Any] = {
        "token": token,
        "base_url": base_url,
        "retry_handlers": [
            RateLimitErrorRetryHandler(max_retry_count=5),
            RepeatableConnectionErrors(max_retry_count=2),
            RepeatableServerErrors(max_retry_count=2),
        ],
    }
    if refusal is None:
        return WebClient(**options)
    return GuardedWebClient(refusal=refusal, **options)


C = TypeVar("C", bound=type)
# What a plan's card message carries in its metadata: the day and its reminders, so that a repost
# finds a message Slack took though its answer was lost, instead of posting its cards twice.
PLAN_CARDS = "arbot_plan_cards"
# A plan's header names its day and workspace; an escalation's parent message, its escalation and
# workspace ("" for the deployment's main one): what a post whose answer was lost looks for.
PLAN_HEADER = "arbot_plan_header"
ESCALATION = "arbot_escalation"
# A message naming what it is (integrations/base/slack.Tag): "arbot_<kind>", its key.
TAGGED = "arbot_"
HISTORY = "history"  # a part of an escalation's history: "<escalation id>:<part>"
HISTORY_PAGE = 200  # messages a page when looking for them; at most HISTORY_PAGES pages
HISTORY_PAGES = 5


def _metadata(event_type: str, **payload: str) -> dict[str, Any]:
    return {"event_type": event_type, "event_payload": payload}


def _tag_metadata(tag: Tag) -> dict[str, Any]:
    return _metadata(TAGGED + tag.kind, key=tag.key)


def _carries(message: dict[str, Any], event_type: str, **payload: str) -> bool:
    """Whether the message's metadata is of `event_type` with each of these values."""
    metadata = message.get("metadata") or {}
    found = metadata.get("event_payload") or {}
    return metadata.get("event_type") == event_type and all(
        str(found.get(key, "")) == value for key, value in payload.items()
    )


def _cards_metadata(day: date, reminder_ids: tuple[int, ...]) -> dict[str, Any]:
    return {
        "event_type": PLAN_CARDS,
        "event_payload": {"day": day.isoformat(), "reminders": ",".join(map(str, reminder_ids))},
    }


def _card_ids(message: dict[str, Any], day: date) -> tuple[int, ...]:
    """The reminders of a plan's card message posted for `day`; () for any other message."""
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    if metadata.get("event_type") != PLAN_CARDS or payload.get("day") != day.isoformat():
        return ()
    try:
        return tuple(int(part) for part in str(payload.get("reminders") or "").split(",") if part)
    except ValueError:
        return ()


def _slack_failures(cls: C) -> C:
    """Every public method raises SlackFailed (a SlackApiError) for an error answer from Slack,
    and for no usable answer at all."""
    for name, method in list(vars(cls).items()):
        if name.startswith("_") or not callable(method):
            continue

        def wrapped(*args: Any, __method: Any = method, **kwargs: Any) -> Any:
            try:
                return __method(*args, **kwargs)
            except SlackFailed:
                raise
            except SlackApiError as exc:
                raise SlackFailed(str(exc), exc.response) from exc
            # No answer, one cut off part-way (http.client's IncompleteRead is no OSError), or
            # one that is not Slack's JSON.
            except (OSError, HTTPException, ValueError) as exc:
                unreachable = {"ok": False, "error": f"unreachable: {type(exc).__name__}"}
                raise SlackFailed(f"cannot reach Slack: {exc}", unreachable) from exc

        setattr(cls, name, functools.wraps(method)(wrapped))
    return cls


@_slack_failures
class SlackChat:
    def __init__(self, client: WebClient) -> None:
        self.client = client

    def post_plan(
        self,
        channel: str,
        summary: PlanSummary,
        cards: list[ReminderCard],
        on_group: Callable[[str, PostedGroup], None],
        *,
        header: tuple[str, str] | None = None,
        on_header: Callable[[str, str], None] | None = None,
        workspace: str = "",
        header_maybe_posted: bool = False,
    ) -> PostedPlan:
        channel_id, header_ts, reposted = self._plan_header(
            channel, summary, header, workspace, header_maybe_posted
        )
        if on_header is not None and (channel_id, header_ts) != header:
            on_header(channel_id, header_ts)
        groups = []
        if reposted:  # a repost: what Slack took, its answer lost
            wanted = {c.reminder_id for c in cards}
            for done in self._cards_posted(channel_id, header_ts, summary.day, wanted):
                on_group(channel_id, done)
                groups.append(done)
            taken = {reminder_id for done in groups for reminder_id in done.reminder_ids}
            cards = [c for c in cards if c.reminder_id not in taken]
        for group in pack(cards):
            ids = tuple(c.reminder_id for c in group)
            posted = self.client.chat_postMessage(
                channel=channel_id,
                text=group_text(group),
                blocks=group_blocks(group),
                metadata=_cards_metadata(summary.day, ids),
            )
            done = PostedGroup(str(posted["ts"]), ids)
            on_group(channel_id, done)
            groups.append(done)
        return PostedPlan(channel=channel_id, header_ts=header_ts, groups=tuple(groups))

    def _history(self, channel: str, oldest: str | None = None) -> Iterator[dict[str, Any]]:
        """The channel's messages (after `oldest`) with their metadata, newest first, at most
        HISTORY_PAGES pages. A refusal to read the channel (an install without the history
        scopes) ends them, with a log line: what was looked for is posted as before. A bad
        minute at Slack (an HTTP error) is raised: the post is tried again later."""
        return self._read(self.client.conversations_history, channel=channel, oldest=oldest)

    def _replies(self, channel: str, thread_ts: str) -> Iterator[dict[str, Any]]:
        """A thread's messages with their metadata, oldest first, as `_history` reads them."""
        return self._read(self.client.conversations_replies, channel=channel, ts=thread_ts)

    def _read(self, method: Callable[..., Any], **where: Any) -> Iterator[dict[str, Any]]:
        channel = where["channel"]
        cursor = ""
        for _ in range(HISTORY_PAGES):
            try:
                page = method(
                    **where,
                    include_all_metadata=True,
                    limit=HISTORY_PAGE,
                    cursor=cursor or None,
                )
            except SlackApiError as exc:
                if getattr(exc.response, "status_code", 200) != 200:  # a bad minute: try later
                    raise
                log.warning(
                    "messages Slack may have already in %s not looked for (%s): posting them",
                    channel,
                    exc.response.get("error"),
                )
                return
            yield from page.get("messages") or []
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return

    def _posted_ts(self, channel: str, event_type: str, **payload: str) -> str | None:
        """The ts of the newest message in the channel whose metadata is this, if any."""
        for message in self._history(channel):
            if _carries(message, event_type, **payload):
                return str(message["ts"])
        return None

    def _cards_posted(
        self, channel: str, header_ts: str, day: date, wanted: set[int]
    ) -> list[PostedGroup]:
        """The plan's card messages Slack has under the header though their post met an error
        (its answer lost on the way back, the process stopped before keeping its ts): each one
        whose reminders are all still `wanted`, oldest first. A refusal to read the channel
        (an install without the history scopes) finds none: the cards are posted again."""
        found: list[PostedGroup] = []
        for message in self._history(channel, oldest=header_ts):
            ids = _card_ids(message, day)
            if ids and set(ids) <= wanted:
                found.append(PostedGroup(str(message["ts"]), ids))
        return sorted(found, key=lambda done: float(done.ts))

    def _plan_header(
        self,
        channel: str,
        summary: PlanSummary,
        header: tuple[str, str] | None,
        workspace: str,
        maybe_posted: bool,
    ) -> tuple[str, str, bool]:
        """The plan's header, and whether Slack had it before: the one posted before, updated;
        with `maybe_posted` (an earlier post of the plan failed before its header's ts was kept),
        the one of this day and workspace Slack took though its answer was lost, found in the
        channel and updated; else a new one (also when Slack no longer has the one before)."""
        day = summary.day.isoformat()
        if header is not None:
            try:
                self.update_plan_header(header[0], header[1], summary)
                return header[0], header[1], True
            except SlackApiError as exc:
                if exc.response.get("error") not in ("message_not_found", "cant_update_message"):
                    raise
        elif maybe_posted:
            ts = self._posted_ts(channel, PLAN_HEADER, day=day, workspace=workspace)
            if ts is not None:
                self.update_plan_header(channel, ts, summary)
                return channel, ts, True
        posted = self.client.chat_postMessage(
            channel=channel,
            text=f"Collections plan for {day}",
            blocks=plan_header_blocks(summary),
            metadata=_metadata(PLAN_HEADER, day=day, workspace=workspace),
        )
        return str(posted["channel"]), str(posted["ts"]), False

    def update_plan_header(self, channel: str, ts: str, summary: PlanSummary) -> None:
        self.client.chat_update(
            channel=channel,
            ts=ts,
            text=f"Collections plan for {summary.day.isoformat()}",
            blocks=plan_header_blocks(summary),
        )

    def answerable(self, response_url: str) -> bool:
        """Whether a click's response_url is Slack's own (https on Slack's hooks host, or the
        host SLACK_API_URL names): an answer is posted to no other address."""
        url, api = urlsplit(response_url), urlsplit(self.client.base_url)
        if url.scheme == "https" and url.hostname in RESPONSE_HOSTS:
            return True
        return bool(url.netloc) and (url.scheme, url.netloc) == (api.scheme, api.netloc)

    def respond(
        self,
        response_url: str,
        text: str,
        blocks: list[dict[str, Any]] | None,
        *,
        shared: bool = False,
    ) -> None:
        """Tell whoever clicked (or typed a command), and only them, through its response_url
        (an ephemeral message, as chat.postEphemeral posts, without a Web API call); `shared`,
        everyone in the channel instead. It reaches channels arbot is not in and direct messages
        between people, where the Web API cannot post. Slack takes up to five answers at a
        response_url within 30 minutes. Not retried: a failure is raised, and the caller tells
        them another way."""
        if not self.answerable(response_url):
            raise SlackFailed("not Slack's response_url", {"ok": False, "error": "invalid_url"})
        answer: dict[str, Any] = {
            "text": text,
            "response_type": "in_channel" if shared else "ephemeral",
            "replace_original": False,
        }
        if blocks:
            answer["blocks"] = blocks
        webhook = WebhookClient(
            response_url,
            timeout=RESPONSE_TIMEOUT_SECONDS,
            ssl=self.client.ssl,
            proxy=self.client.proxy,
            retry_handlers=[],
        )
        sent = webhook.send_dict(answer)
        if sent.status_code != 200:
            raise SlackFailed(
                f"response_url answered {sent.status_code}: {sent.body}",
                {"ok": False, "error": str(sent.body or sent.status_code)},
            )

    def update_cards(self, channel: str, ts: str, cards: list[ReminderCard]) -> None:
        self.client.chat_update(
            channel=channel, ts=ts, text=group_text(cards), blocks=group_blocks(cards)
        )

    def post_escalation(
        self,
        channel: str,
        view: EscalationView,
        *,
        workspace: str = "",
        maybe_posted: bool = False,
    ) -> tuple[str, str]:
        tag = {"escalation": str(view.id), "workspace": workspace}
        if maybe_posted:  # Slack may have taken an earlier post: that one, drawn anew
            ts = self._posted_ts(channel, ESCALATION, **tag)
            if ts is not None:
                self.update_escalation(channel, ts, view)
                return channel, ts
        parent = self.client.chat_postMessage(
            channel=channel,
            text=escalation_text(view),
            blocks=escalation_blocks(view),
            metadata=_metadata(ESCALATION, **tag),
        )
        return str(parent["channel"]), str(parent["ts"])

    def post_history(
        self, channel: str, thread_ts: str, view: EscalationView, *, maybe_posted: bool = False
    ) -> None:
        parts = [Tag(HISTORY, f"{view.id}:{n}") for n, _ in enumerate(history_messages(view))]
        taken = self._tags_in_thread(channel, thread_ts) if maybe_posted else set()
        for part, blocks in zip(parts, history_messages(view), strict=True):
            if part in taken:  # Slack took it though its answer was lost
                continue
            self.client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text="Account history",
                blocks=blocks,
                metadata=_tag_metadata(part),
            )

    def update_escalation(self, channel: str, ts: str, view: EscalationView) -> None:
        self.client.chat_update(
            channel=channel, ts=ts, text=escalation_text(view), blocks=escalation_blocks(view)
        )

    def post_in_thread(
        self,
        channel: str,
        thread_ts: str,
        text: str,
        *,
        tag: Tag | None = None,
        maybe_posted: bool = False,
    ) -> None:
        """`text` is Mrkdwn; a plain str is escaped (integrations/base/mrkdwn.py)."""
        if tag is not None and maybe_posted and tag in self._tags_in_thread(channel, thread_ts):
            return  # Slack took it though its answer was lost
        self.client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=escape(text),
            metadata=_tag_metadata(tag) if tag is not None else None,
        )

    def post_text(
        self, channel: str, text: str, *, tag: Tag | None = None, maybe_posted: bool = False
    ) -> None:
        """`text` is Mrkdwn; a plain str is escaped (integrations/base/mrkdwn.py)."""
        if tag is not None and maybe_posted:
            wanted = _tag_metadata(tag)
            if self._posted_ts(channel, wanted["event_type"], **wanted["event_payload"]):
                return  # Slack took it though its answer was lost
        safe = escape(text)
        self.client.chat_postMessage(
            channel=channel,
            text=safe,
            blocks=text_blocks(safe),
            metadata=_tag_metadata(tag) if tag is not None else None,
        )

    def _tags_in_thread(self, channel: str, thread_ts: str) -> set[Tag]:
        """What the thread's replies name in their metadata (none where Slack will not let the
        install read the channel: then everything is posted as before)."""
        found = set()
        for message in self._replies(channel, thread_ts):
            metadata = message.get("metadata") or {}
            kind = str(metadata.get("event_type") or "")
            key = (metadata.get("event_payload") or {}).get("key")
            if kind.startswith(TAGGED) and key is not None:
                found.add(Tag(kind.removeprefix(TAGGED), str(key)))
        return found

    def post_review(self, channel: str, view: ReviewView) -> tuple[str, str]:
        posted = self.client.chat_postMessage(
            channel=channel, text=review_text(view), blocks=review_blocks(view)
        )
        return str(posted["channel"]), str(posted["ts"])

    def update_review(self, channel: str, ts: str, view: ReviewView) -> None:
        self.client.chat_update(
            channel=channel, ts=ts, text=review_text(view), blocks=review_blocks(view)
        )

    def post_proposal(self, channel: str, view: ProposalView) -> tuple[str, str]:
        posted = self.client.chat_postMessage(
            channel=channel, text=proposal_text(view), blocks=proposal_blocks(view)
        )
        return str(posted["channel"]), str(posted["ts"])

    def update_proposal(self, channel: str, ts: str, view: ProposalView) -> None:
        self.client.chat_update(
            channel=channel, ts=ts, text=proposal_text(view), blocks=proposal_blocks(view)
        )

    def post_guardrail(self, channel: str, view: GuardrailView) -> tuple[str, str]:
        posted = self.client.chat_postMessage(
            channel=channel, text=guardrail_text(view), blocks=guardrail_blocks(view)
        )
        return str(posted["channel"]), str(posted["ts"])

    def update_guardrail(self, channel: str, ts: str, view: GuardrailView) -> None:
        self.client.chat_update(
            channel=channel, ts=ts, text=guardrail_text(view), blocks=guardrail_blocks(view)
        )
