"""A local stand-in for the Slack Web API, for tests.

`FakeSlack` runs a standard-library HTTP server on 127.0.0.1 (a free port, daemon thread) that
answers `/api/<method>` the way slack.com does for the methods arbot uses: the same response
shapes, `{"ok": false, "error": ...}` with HTTP 200 for refusals, HTTP 429 with `Retry-After` for
rate limits, and Block Kit limits enforced the way Slack refuses bad messages. Every call is
recorded so tests can assert what was sent and what a message looks like after updates.

A click's `response_url` (Slack's webhook for answering that click, not a Web API method) can
point at the fake too: `response_url(channel, ts)` makes one for a click on that message, and
`/response/<id>` answers what is posted there as Slack does: HTTP 200 `ok`; an ephemeral message
(the default) or one `in_channel`, or with `replace_original` / `delete_original` the message the
button is on changed or deleted; 400 for a message Slack would refuse; 404 `used_url` after
five answers (Slack's 30 minutes are not kept). Each post is recorded in `responses()`, apart
from the Web API's `records()`, and `fail_response_next` makes the next one answer an error.

Chosen calls can be made to fail: `fail_next` (an error answer such as `not_in_channel`),
`rate_limit_next` (HTTP 429) and `server_error_next` (HTTP 500), each optionally only after a
number of calls of the method were answered as usual (a failure part-way through a post);
`lose_answer_next` does the call (a message is posted) and then closes the connection without
an answer, as when Slack's answer is lost on the way back; `cut_answer_next` does it and closes
the connection part-way through the answer.

    with FakeSlack() as fake:
        client = WebClient(token="xoxb-test", base_url=fake.url)
        client.chat_postMessage(channel="C1", text="hi")
        assert fake.last("chat.postMessage")["text"] == "hi"
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import deque
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

TEAM_ID = "T0TEST"
TEAM_NAME = "Test Team"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0APP"
TEAM_URL = "https://test-team.slack.com/"

# The bot scopes of slack/manifest.yml, which an app created from it is granted.
MANIFEST_SCOPES = (
    "chat:write",
    "commands",
    "channels:read",
    "groups:read",
    "channels:history",
    "groups:history",
    "files:write",
    "incoming-webhook",
)

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 40_000

# Parameters Slack accepts as JSON-encoded strings inside form data.
_JSON_PARAMS = ("blocks", "view", "attachments", "metadata")

Params = dict[str, Any]
Answer = tuple[int, dict[str, Any], dict[str, str]]  # status, body, extra headers


def _ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def _err(error: str, messages: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error": error}
    if messages:
        body["response_metadata"] = {"messages": messages}
    return body


# --------------------------------------------------------------------------- Block Kit checks


def _problem(text: str, pointer: str) -> str:
    """A message in the format Slack uses in `response_metadata.messages`."""
    return f"[ERROR] {text} [json-pointer:{pointer}]"


def _check_text_object(
    obj: Any,
    pointer: str,
    max_len: int,
    out: list[str],
    plain_only: bool = False,
) -> None:
    if not isinstance(obj, dict):
        out.append(_problem("must be a text object", pointer))
        return
    kind = obj.get("type")
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if kind not in allowed:
        out.append(_problem(f"must be one of {', '.join(allowed)}", f"{pointer}/type"))
    text = obj.get("text")
    if not isinstance(text, str):
        out.append(_problem("missing required field: text", f"{pointer}/text"))
    elif len(text) == 0:
        out.append(_problem("must be more than 0 characters", f"{pointer}/text"))
    elif len(text) > max_len:
        out.append(_problem(f"must be less than {max_len + 1} characters", f"{pointer}/text"))


def _check_max_str(value: Any, pointer: str, max_len: int, out: list[str]) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        out.append(_problem("must be a string", pointer))
    elif len(value) > max_len:
        out.append(_problem(f"must be less than {max_len + 1} characters", pointer))


def _check_options(options: Any, pointer: str, max_items: int, out: list[str]) -> None:
    if not isinstance(options, list):
        return
    if len(options) > max_items:
        out.append(_problem(f"must be less than {max_items + 1} items", pointer))
    for k, option in enumerate(options):
        if not isinstance(option, dict):
            out.append(_problem("must be an option object", f"{pointer}/{k}"))
            continue
        _check_text_object(option.get("text"), f"{pointer}/{k}/text", 75, out)
        _check_max_str(option.get("value"), f"{pointer}/{k}/value", 150, out)


def _check_element(element: Any, pointer: str, out: list[str]) -> None:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        out.append(_problem("missing required field: type", f"{pointer}/type"))
        return
    _check_max_str(element.get("action_id"), f"{pointer}/action_id", 255, out)
    kind = element["type"]
    if kind == "button":
        _check_text_object(element.get("text"), f"{pointer}/text", 75, out, plain_only=True)
        _check_max_str(element.get("value"), f"{pointer}/value", 2000, out)
        _check_max_str(element.get("url"), f"{pointer}/url", 3000, out)
        style = element.get("style")
        if style is not None and style not in ("primary", "danger"):
            out.append(_problem("must be a valid enum value", f"{pointer}/style"))
    elif kind in ("static_select", "multi_static_select"):
        _check_options(element.get("options"), f"{pointer}/options", 100, out)
    elif kind == "overflow":
        options = element.get("options")
        if isinstance(options, list) and len(options) < 2:
            out.append(_problem("must provide at least 2 items", f"{pointer}/options"))
        _check_options(options, f"{pointer}/options", 5, out)


def _check_block(block: Any, pointer: str, out: list[str]) -> None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        out.append(_problem("missing required field: type", f"{pointer}/type"))
        return
    kind = block["type"]
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and fields is None:
            out.append(_problem("must provide either text or fields", pointer))
        if text is not None:
            _check_text_object(text, f"{pointer}/text", 3000, out)
        if fields is not None:
            if not isinstance(fields, list):
                out.append(_problem("must be an array", f"{pointer}/fields"))
            else:
                if len(fields) > 10:
                    out.append(_problem("must be less than 11 items", f"{pointer}/fields"))
                for k, field in enumerate(fields):
                    _check_text_object(field, f"{pointer}/fields/{k}", 2000, out)
        if block.get("accessory") is not None:
            _check_element(block["accessory"], f"{pointer}/accessory", out)
    elif kind == "header":
        _check_text_object(block.get("text"), f"{pointer}/text", 150, out, plain_only=True)
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            out.append(_problem("must provide at least 1 item", f"{pointer}/elements"))
            return
        if len(elements) > 25:
            out.append(_problem("must be less than 26 items", f"{pointer}/elements"))
        seen: set[str] = set()
        for k, element in enumerate(elements):
            _check_element(element, f"{pointer}/elements/{k}", out)
            action_id = element.get("action_id") if isinstance(element, dict) else None
            if isinstance(action_id, str):
                if action_id in seen:
                    out.append(
                        _problem(
                            f"duplicate action_id: {action_id}",
                            f"{pointer}/elements/{k}/action_id",
                        )
                    )
                seen.add(action_id)
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            out.append(_problem("must provide at least 1 item", f"{pointer}/elements"))
        elif len(elements) > 10:
            out.append(_problem("must be less than 11 items", f"{pointer}/elements"))
    elif kind == "input":
        _check_text_object(block.get("label"), f"{pointer}/label", 2000, out, plain_only=True)
        if block.get("element") is None:
            out.append(_problem("missing required field: element", f"{pointer}/element"))
        else:
            _check_element(block["element"], f"{pointer}/element", out)


def validate_blocks(blocks: Any, pointer: str = "/blocks", max_blocks: int = 50) -> list[str]:
    """Slack-style problems with a list of blocks; an empty list means Slack would accept it."""
    if not isinstance(blocks, list):
        return [_problem("must be an array", pointer)]
    out: list[str] = []
    if len(blocks) > max_blocks:
        out.append(_problem(f"must be less than {max_blocks + 1} items", pointer))
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        _check_block(block, f"{pointer}/{i}", out)
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if block_id is not None:
            _check_max_str(block_id, f"{pointer}/{i}/block_id", 255, out)
            if isinstance(block_id, str):
                if block_id in block_ids:
                    out.append(
                        _problem(f"duplicate block_id: {block_id}", f"{pointer}/{i}/block_id")
                    )
                block_ids.add(block_id)
    return out


def _view_problems(view: Any) -> tuple[str, list[str]] | None:
    """(error, messages) when Slack would refuse this view, else None."""
    if not isinstance(view, dict):
        return "invalid_arguments", [_problem("must be an object", "/view")]
    problems: list[str] = []
    kind = view.get("type")
    if kind not in ("modal", "home"):
        problems.append(_problem("must be a valid enum value", "/view/type"))
    if kind == "modal":
        if view.get("title") is None:
            problems.append(_problem("missing required field: title", "/view/title"))
        else:
            _check_text_object(view["title"], "/view/title", 24, problems, plain_only=True)
    for key in ("submit", "close"):
        if view.get(key) is not None:
            _check_text_object(view[key], f"/view/{key}", 24, problems, plain_only=True)
    _check_max_str(view.get("private_metadata"), "/view/private_metadata", 3000, problems)
    _check_max_str(view.get("callback_id"), "/view/callback_id", 255, problems)
    _check_max_str(view.get("external_id"), "/view/external_id", 255, problems)
    blocks = view.get("blocks")
    if blocks is None:
        problems.append(_problem("missing required field: blocks", "/view/blocks"))
    elif (
        kind == "modal"
        and isinstance(blocks, list)
        and view.get("submit") is None
        and any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
    ):
        problems.append(_problem("submit is required when an input block is present", "/view"))
    if problems:
        return "invalid_arguments", problems
    block_problems = validate_blocks(blocks, "/view/blocks", MAX_VIEW_BLOCKS)
    if block_problems:
        return "invalid_blocks", block_problems
    return None


# --------------------------------------------------------------------------- request decoding


def _parse_body(content_type: str, body: bytes) -> Params:
    ctype = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return {}
    if ctype == "application/json":
        decoded = json.loads(body.decode("utf-8"))
        return dict(decoded) if isinstance(decoded, dict) else {}
    if ctype == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
        params: Params = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not name:
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                payload = b""
            has_file = part.get_param("filename", header="content-disposition")
            params[str(name)] = payload if has_file else payload.decode("utf-8")
        return params
    # application/x-www-form-urlencoded, or no content type at all
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}


def _decode_json_params(params: Params) -> Params:
    for key in _JSON_PARAMS:
        value = params.get(key)
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            # Undecodable JSON stays a string; validation refuses it the way Slack would.
            with contextlib.suppress(json.JSONDecodeError):
                params[key] = json.loads(value)
    return params


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeSlack) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = dict(self.headers.items())
        extra: dict[str, str] = {}
        if split.path.startswith("/upload/"):  # where files.getUploadURLExternal sends the bytes
            self._send_text(*self.server.fake._receive_upload(split.path[len("/upload/") :], body))
            return
        if split.path.startswith("/response/"):  # a click's response_url
            answer_id = split.path[len("/response/") :].strip("/")
            content_type = self.headers.get("Content-Type", "")
            self._send_text(*self.server.fake._answer_at(answer_id, content_type, body))
            return
        if not split.path.startswith("/api/"):
            status, answer = 404, _err("not_found")
        else:
            method = split.path[len("/api/") :].strip("/")
            params: Params = {k: v[-1] for k, v in parse_qs(split.query).items()}
            try:
                params.update(_parse_body(self.headers.get("Content-Type", ""), body))
            except (ValueError, UnicodeDecodeError):
                status, answer = 200, _err("invalid_form_data")
            else:
                status, answer, extra = self.server.fake._dispatch(
                    method, _decode_json_params(params), headers
                )
                lost = self.server.fake._answer_lost(method)
                if lost == "lost":  # done, and the answer never arrives
                    self.close_connection = True
                    return
                if lost == "cut":  # done, and the answer stops part-way
                    self._send_cut(status, answer)
                    return
        payload = json.dumps(answer).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _send_cut(self, status: int, answer: dict[str, Any]) -> None:
        payload = json.dumps(answer).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2])
        self.wfile.flush()
        self.close_connection = True

    def _send_text(self, status: int, text: str) -> None:
        payload = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


# --------------------------------------------------------------------------- the fake


class FakeSlack:
    """A fake Slack Web API on 127.0.0.1; see the module docstring."""

    def __init__(self, token: str = "xoxb-test", members: list[str] | None = None) -> None:
        self.token = token
        # Several workspaces: each bot token belongs to one team (auth.test answers with it, and
        # every record says which team's token made the call).
        self.tokens: dict[str, str] = {token: TEAM_ID}
        # oauth.v2.access: the app's credentials, and what each one-time code grants.
        self.client_id = "1111.2222"
        self.client_secret = "test-client-secret"
        self.grants: dict[str, dict[str, Any]] = {}
        self.revoked: list[str] = []  # tokens given back with auth.revoke
        self.members: list[str] = list(members) if members is not None else ["U0APPROVER"]
        # The bot token's scopes, sent as `x-oauth-scopes` (default: the manifest's).
        self.scopes: list[str] = list(MANIFEST_SCOPES)
        # conversations.info: what differs from a public #finance the bot is in, by channel id;
        # None: the channel does not exist (or is private and the bot not in it).
        self.channels: dict[str, dict[str, Any] | None] = {}
        self.expired_triggers: set[str] = set()
        self.rate_limited_count = 0
        self._lock = threading.RLock()
        # Told "Slack <method>" as each call arrives, before it is answered (a test's guard).
        self.on_call: Callable[[str], None] | None = None
        self._records: list[dict[str, Any]] = []
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._failures: dict[str, deque[str]] = {}
        # method → what each of its next calls answers: None as usual, else (status, error).
        self._scripts: dict[str, deque[tuple[int, str] | None]] = {}
        self._rate_limits: dict[str, deque[int]] = {}
        # method → what becomes of each of its next calls' answer (the call done all the same):
        # None as usual, "lost" (never sent) or "cut" (stopped part-way).
        self._lost: dict[str, deque[str | None]] = {}
        self._files: dict[str, dict[str, Any]] = {}
        self._ts_counter = 0
        self._view_counter = 0
        self._file_counter = 0
        # response_url id → the message (channel, ts) whose button was clicked; what was posted
        # at each, and the errors its next answers give (status, error).
        self._answer_urls: dict[str, tuple[str, str]] = {}
        self._answers: list[dict[str, Any]] = []
        self._answer_failures: deque[tuple[int, str]] = deque()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._methods: dict[str, Callable[[Params], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "conversations.members": self._conversations_members,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # stop() waits up to this for shutdown()
            name="fake-slack",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL for `WebClient(base_url=...)`: `http://127.0.0.1:<port>/api/`."""
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    # ----------------------------------------------------------------- inspection

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        """The params of every call (of `method`, if given), oldest first. Calls that were
        refused (invalid_auth, injected failures, 429s) are included."""
        with self._lock:
            return [r["params"] for r in self._records if method is None or r["method"] == method]

    def records(self, method: str | None = None) -> list[dict[str, Any]]:
        """Full records: method, params, headers, status (HTTP) and response (the body sent)."""
        with self._lock:
            return [dict(r) for r in self._records if method is None or r["method"] == method]

    def last(self, method: str | None = None) -> dict[str, Any]:
        """The params of the most recent call (of `method`, if given)."""
        found = self.calls(method)
        if not found:
            raise LookupError(f"no call to {method or 'any method'} was recorded")
        return found[-1]

    @property
    def messages(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Posted messages as they look now (after chat.update), keyed by (channel, ts)."""
        with self._lock:
            return {key: dict(message) for key, message in self._messages.items()}

    @property
    def views(self) -> dict[str, dict[str, Any]]:
        """Views opened, updated or published, as they look now, keyed by view id."""
        with self._lock:
            return {key: dict(view) for key, view in self._views.items()}

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        """Files by id: `filename`, `length` (as announced), `data` (the bytes POSTed to the
        upload URL, None until then), and once completed `title`, `channel_id`,
        `initial_comment`, `thread_ts`."""
        with self._lock:
            return {key: dict(entry) for key, entry in self._files.items()}

    def response_url(self, channel: str, ts: str) -> str:
        """A new response_url, as Slack sends with a click on the message channel/ts."""
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        with self._lock:
            answer_id = f"R{len(self._answer_urls) + 1:06d}"
            self._answer_urls[answer_id] = (channel, ts)
        return f"http://127.0.0.1:{self._server.server_address[1]}/response/{answer_id}"

    def responses(self, kind: str | None = None) -> list[dict[str, Any]]:
        """What was posted at response_urls, oldest first: `id`, `channel` and `ts` (the clicked
        message), `kind` (`ephemeral`, `in_channel`, `replace_original` or `delete_original`),
        `body` (the JSON posted), and `status` and `answer` (what the fake answered)."""
        with self._lock:
            return [dict(a) for a in self._answers if kind is None or a["kind"] == kind]

    def fail_response_next(self, error: str = "expired_url", status: int = 404) -> None:
        """The next post at any response_url answers HTTP `status` with `error`, and does
        nothing (Slack's answer to a response_url that expired, or was used up)."""
        with self._lock:
            self._answer_failures.append((status, error))

    def _answer_at(self, answer_id: str, content_type: str, raw: bytes) -> tuple[int, str]:
        try:
            body = _parse_body(content_type or "application/json", raw)
        except (ValueError, UnicodeDecodeError):
            body = {}
        with self._lock:
            channel, ts = self._answer_urls.get(answer_id, ("", ""))
            if body.get("delete_original"):
                kind = "delete_original"
            elif body.get("replace_original"):
                kind = "replace_original"
            else:
                kind = "in_channel" if body.get("response_type") == "in_channel" else "ephemeral"
            status, answer = self._answered_at(answer_id, channel, ts, kind, body)
            self._answers.append(
                {
                    "id": answer_id,
                    "channel": channel,
                    "ts": ts,
                    "kind": kind,
                    "body": body,
                    "status": status,
                    "answer": answer,
                }
            )
            return status, answer

    def _answered_at(
        self, answer_id: str, channel: str, ts: str, kind: str, body: Params
    ) -> tuple[int, str]:
        if not channel:
            return 404, "invalid_url"
        if self._answer_failures:
            return self._answer_failures.popleft()
        if sum(1 for a in self._answers if a["id"] == answer_id and a["status"] == 200) >= 5:
            return 404, "used_url"
        if kind == "delete_original":
            return (200, "ok") if self._messages.pop((channel, ts), None) else (404, "not_found")
        problem = self._message_problem(body)
        if problem is not None:
            return 400, str(problem["error"])
        if kind == "replace_original":
            current = self._messages.get((channel, ts))
            if current is None:
                return 404, "message_not_found"
            current["text"] = str(body.get("text") or "")
            current["blocks"] = body.get("blocks") or []
            current["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        elif kind == "in_channel":
            self._chat_post_message({**body, "channel": channel})
        return 200, "ok"

    def reset(self) -> None:
        """Forget recorded calls, messages, views, pending failures and rate limits."""
        with self._lock:
            self._answers.clear()
            self._answer_failures.clear()
            self._records.clear()
            self._messages.clear()
            self._views.clear()
            self._files.clear()
            self._failures.clear()
            self._scripts.clear()
            self._rate_limits.clear()
            self._lost.clear()
            self.expired_triggers.clear()
            self.rate_limited_count = 0

    # ----------------------------------------------------------------- failure injection

    def fail_next(self, method: str, error: str, *, after: int = 0, times: int = 1) -> None:
        """The next call of `method` answers `{"ok": false, "error": error}` (queued in order).
        With `after`, that many calls are answered as usual first; `times` calls fail."""
        with self._lock:
            if after == 0 and times == 1 and not self._scripts.get(method):
                self._failures.setdefault(method, deque()).append(error)
                return
            self._script(method, after, times, (200, error))

    def server_error_next(
        self, method: str, *, after: int = 0, times: int = 1, error: str = "internal_error"
    ) -> None:
        """After `after` calls of `method` answered as usual, the next `times` answer HTTP 500
        (Slack having a bad minute) and do nothing."""
        with self._lock:
            self._script(method, after, times, (500, error))

    def _script(self, method: str, after: int, times: int, answer: tuple[int, str]) -> None:
        script = self._scripts.setdefault(method, deque())
        script.extend([None] * after)
        script.extend([answer] * times)

    def rate_limit_next(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """The next `times` calls of `method` answer HTTP 429 with `Retry-After: retry_after`."""
        with self._lock:
            self._rate_limits.setdefault(method, deque()).extend([retry_after] * times)

    def lose_answer_next(self, method: str, *, after: int = 0, times: int = 1) -> None:
        """After `after` calls of `method` answered as usual, the next `times` are done as usual
        (a chat.postMessage posts its message) but the connection is closed before any answer
        is sent: the caller cannot tell whether Slack did it."""
        with self._lock:
            self._lost.setdefault(method, deque()).extend([None] * after + ["lost"] * times)

    def cut_answer_next(self, method: str, *, after: int = 0, times: int = 1) -> None:
        """As `lose_answer_next`, but the answer is cut off part-way: its headers and half of
        its body are sent (Content-Length promising all of it), then the connection is closed."""
        with self._lock:
            self._lost.setdefault(method, deque()).extend([None] * after + ["cut"] * times)

    def _answer_lost(self, method: str) -> str | None:
        with self._lock:
            lost = self._lost.get(method)
            return lost.popleft() if lost else None

    # ----------------------------------------------------------------- dispatch

    def _dispatch(self, method: str, params: Params, headers: dict[str, str]) -> Answer:
        if self.on_call is not None:
            self.on_call(f"Slack {method}")
        with self._lock:
            status, body, extra = self._answer(method, params, headers)
            if self._token_of(params, headers) in self.tokens:  # Slack lists them on every answer
                extra = {**extra, "x-oauth-scopes": ",".join(self.scopes)}
            self._records.append(
                {
                    "method": method,
                    "team": self.tokens.get(self._token_of(params, headers) or ""),
                    "params": params,
                    "headers": headers,
                    "status": status,
                    "response": body,
                }
            )
            return status, body, extra

    def _answer(self, method: str, params: Params, headers: dict[str, str]) -> Answer:
        if method == "oauth.v2.access":
            return 200, self._oauth_v2_access(params, headers), {}
        token = self._token_of(params, headers)
        if token not in self.tokens:
            return 200, _err("invalid_auth"), {}
        if method == "auth.revoke":
            self.revoked.append(token or "")
            self.tokens.pop(token or "", None)
            return 200, _ok(revoked=True), {}
        handler = self._methods.get(method)
        if handler is None:
            return 200, _err("unknown_method"), {}
        script = self._scripts.get(method)
        if script:
            scripted = script.popleft()
            if scripted is not None:
                status, error = scripted
                return status, _err(error), {}
        limits = self._rate_limits.get(method)
        if limits:
            retry_after = limits.popleft()
            self.rate_limited_count += 1
            return 429, _err("ratelimited"), {"Retry-After": str(retry_after)}
        failures = self._failures.get(method)
        if failures:
            return 200, _err(failures.popleft()), {}
        if method == "auth.test":  # answers for the workspace the token belongs to
            return 200, self._auth_test(params, self.tokens[token or ""]), {}
        return 200, handler(params), {}

    @staticmethod
    def _token_of(params: Params, headers: dict[str, str]) -> str | None:
        for name, value in headers.items():
            if name.lower() == "authorization" and value.startswith("Bearer "):
                return value[len("Bearer ") :].strip()
        token = params.get("token")
        return token if isinstance(token, str) else None

    def _next_ts(self) -> str:
        self._ts_counter += 1
        micros = 1_700_000_000_000_000 + self._ts_counter * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _next_view_id(self) -> str:
        self._view_counter += 1
        return f"V{self._view_counter:08d}"

    # ----------------------------------------------------------------- message checks

    @staticmethod
    def _message_problem(params: Params, require_content: bool = True) -> dict[str, Any] | None:
        text = params.get("text")
        blocks = params.get("blocks")
        if require_content and not text and not blocks and not params.get("attachments"):
            return _err("no_text")
        if text is not None and len(str(text)) > MAX_MESSAGE_TEXT:
            return _err("msg_too_long")
        if blocks is not None:
            if not isinstance(blocks, list):
                return _err("invalid_blocks_format")
            problems = validate_blocks(blocks, "/blocks", MAX_MESSAGE_BLOCKS)
            if problems:
                return _err("invalid_blocks", problems)
        return None

    # ----------------------------------------------------------------- methods

    def add_workspace(self, team_id: str, token: str) -> None:
        """Another workspace this app is installed in, with its own bot token."""
        with self._lock:
            self.tokens[token] = team_id

    def grant(
        self,
        code: str,
        team_id: str,
        token: str,
        channel: str = "C0FINANCE",
        user: str = "U0ADMIN",
        enterprise: str | None = None,
    ) -> None:
        """What oauth.v2.access answers for this one-time code (an install being approved)."""
        with self._lock:
            self.grants[code] = {
                "team_id": team_id,
                "token": token,
                "channel": channel,
                "user": user,
                "enterprise": enterprise,
            }

    def _oauth_v2_access(self, params: Params, headers: dict[str, str]) -> dict[str, Any]:
        import base64

        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        for name, value in headers.items():
            if name.lower() == "authorization" and value.startswith("Basic "):
                client_id, _, client_secret = (
                    base64.b64decode(value[len("Basic ") :]).decode().partition(":")
                )
        if (client_id, client_secret) != (self.client_id, self.client_secret):
            return _err("invalid_client_id")
        grant = self.grants.pop(str(params.get("code") or ""), None)
        if grant is None:
            return _err("invalid_code")
        self.tokens[grant["token"]] = grant["team_id"]
        return _ok(
            app_id=APP_ID,
            authed_user={"id": grant["user"]},
            scope="chat:write,commands,incoming-webhook",
            token_type="bot",
            access_token=grant["token"],
            bot_user_id=BOT_USER_ID,
            team={"id": grant["team_id"], "name": f"Team {grant['team_id']}"},
            enterprise={"id": grant["enterprise"], "name": "Org"} if grant["enterprise"] else None,
            is_enterprise_install=False,
            incoming_webhook={
                "channel": "#finance",
                "channel_id": grant["channel"],
                "configuration_url": "https://example.slack.com/services/B0HOOK",
                "url": "https://hooks.slack.com/services/T/B/secret",
            },
        )

    def _auth_test(self, params: Params, team_id: str = TEAM_ID) -> dict[str, Any]:
        return _ok(
            url=TEAM_URL,
            team=TEAM_NAME,
            user="arbot",
            team_id=team_id,
            user_id=BOT_USER_ID,
            bot_id=BOT_ID,
            is_enterprise_install=False,
        )

    def _chat_post_message(self, params: Params) -> dict[str, Any]:
        channel = params.get("channel")
        if not channel:
            return _err("channel_not_found")
        problem = self._message_problem(params)
        if problem is not None:
            return problem
        ts = self._next_ts()
        message: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "text": str(params.get("text") or ""),
            "blocks": params.get("blocks") or [],
            "ts": ts,
        }
        for key in ("thread_ts", "attachments", "metadata"):
            if params.get(key) is not None:
                message[key] = params[key]
        self._messages[(str(channel), ts)] = {"channel": str(channel), **message}
        return _ok(channel=channel, ts=ts, message=message)

    def _chat_update(self, params: Params) -> dict[str, Any]:
        channel, ts = params.get("channel"), params.get("ts")
        if not channel:
            return _err("channel_not_found")
        current = self._messages.get((str(channel), str(ts)))
        if current is None:
            return _err("message_not_found")
        problem = self._message_problem(params)
        if problem is not None:
            return problem
        # Like Slack: text is replaced; blocks/attachments are kept unless sent (send [] to clear).
        current["text"] = str(params.get("text") or "")
        for key in ("blocks", "attachments", "metadata"):
            if params.get(key) is not None:
                current[key] = params[key]
        current["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        message = {k: v for k, v in current.items() if k != "channel"}
        return _ok(channel=channel, ts=ts, text=current["text"], message=message)

    def _chat_post_ephemeral(self, params: Params) -> dict[str, Any]:
        if not params.get("channel"):
            return _err("channel_not_found")
        if not params.get("user"):
            return _err("user_not_found")
        problem = self._message_problem(params)
        if problem is not None:
            return problem
        return _ok(message_ts=self._next_ts())

    def _store_view(self, view: dict[str, Any], view_id: str | None = None) -> dict[str, Any]:
        view_id = view_id or self._next_view_id()
        stored: dict[str, Any] = {
            "type": "modal",
            "blocks": [],
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            **view,
            "id": view_id,
            "team_id": TEAM_ID,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
            "state": {"values": {}},
            "hash": f"{self._next_ts()}.fakehash",
            "root_view_id": view_id,
            "previous_view_id": None,
        }
        self._views[view_id] = stored
        return dict(stored)

    def _views_open(self, params: Params) -> dict[str, Any]:
        trigger_id = params.get("trigger_id")
        if not trigger_id:
            return _err("invalid_arguments", [_problem("missing required field", "/trigger_id")])
        if trigger_id in self.expired_triggers:
            return _err("expired_trigger_id")
        problem = _view_problems(params.get("view"))
        if problem is not None:
            return _err(*problem)
        return _ok(view=self._store_view(params["view"]))

    def _views_update(self, params: Params) -> dict[str, Any]:
        view_id = params.get("view_id")
        external_id = params.get("external_id")
        if not view_id and not external_id:
            return _err("invalid_arguments", [_problem("view_id or external_id required", "/")])
        problem = _view_problems(params.get("view"))
        if problem is not None:
            return _err(*problem)
        if not view_id:
            view_id = next(
                (k for k, v in self._views.items() if v.get("external_id") == external_id), None
            )
        return _ok(view=self._store_view(params["view"], str(view_id) if view_id else None))

    def _views_publish(self, params: Params) -> dict[str, Any]:
        if not params.get("user_id"):
            return _err("invalid_arguments", [_problem("missing required field", "/user_id")])
        view = params.get("view")
        problem = _view_problems(view)
        if problem is not None:
            return _err(*problem)
        return _ok(view=self._store_view(view))  # type: ignore[arg-type]

    def _conversations_members(self, params: Params) -> dict[str, Any]:
        if not params.get("channel"):
            return _err("channel_not_found")
        start = int(params.get("cursor") or 0)
        limit = int(params.get("limit") or 0) or len(self.members) or 1
        page = self.members[start : start + limit]
        more = start + limit < len(self.members)
        return _ok(
            members=page, response_metadata={"next_cursor": str(start + limit) if more else ""}
        )

    def _conversations_info(self, params: Params) -> dict[str, Any]:
        channel = params.get("channel")
        if not channel or (channel in self.channels and self.channels[channel] is None):
            return _err("channel_not_found")
        return _ok(
            channel={
                "id": channel,
                "name": "finance",
                "is_channel": True,
                "is_private": False,
                "is_archived": False,
                "is_member": True,
                "context_team_id": TEAM_ID,
                **(self.channels.get(channel) or {}),
            }
        )

    def _conversations_history(self, params: Params) -> dict[str, Any]:
        """A channel's messages, newest first, without thread replies: those after `oldest`
        (and at it, with `inclusive`), `limit` a page, paged by `cursor`; each message's
        `metadata` only with `include_all_metadata`."""
        channel = params.get("channel")
        if not channel or (channel in self.channels and self.channels[channel] is None):
            return _err("channel_not_found")
        oldest = float(params.get("oldest") or 0)
        inclusive = str(params.get("inclusive")).lower() in ("true", "1")
        metadata = str(params.get("include_all_metadata")).lower() in ("true", "1")
        found = sorted(
            (
                m
                for (where, ts), m in self._messages.items()
                if where == channel
                and m.get("thread_ts") in (None, ts)
                and (float(ts) > oldest or (inclusive and float(ts) == oldest))
            ),
            key=lambda m: float(m["ts"]),
            reverse=True,
        )
        start = int(params.get("cursor") or 0)
        limit = int(params.get("limit") or 0) or 100
        page = [
            {k: v for k, v in m.items() if k != "channel" and (metadata or k != "metadata")}
            for m in found[start : start + limit]
        ]
        more = start + limit < len(found)
        return _ok(
            messages=page,
            has_more=more,
            response_metadata={"next_cursor": str(start + limit) if more else ""},
        )

    def _conversations_replies(self, params: Params) -> dict[str, Any]:
        """A thread's messages, the parent first, then its replies oldest first, `limit` a page,
        paged by `cursor`; each message's `metadata` only with `include_all_metadata`."""
        channel, thread_ts = params.get("channel"), str(params.get("ts") or "")
        if not channel or (channel in self.channels and self.channels[channel] is None):
            return _err("channel_not_found")
        if (str(channel), thread_ts) not in self._messages:
            return _err("thread_not_found")
        metadata = str(params.get("include_all_metadata")).lower() in ("true", "1")
        found = sorted(
            (
                m
                for (where, ts), m in self._messages.items()
                if where == channel and (ts == thread_ts or m.get("thread_ts") == thread_ts)
            ),
            key=lambda m: float(m["ts"]),
        )
        start = int(params.get("cursor") or 0)
        limit = int(params.get("limit") or 0) or 100
        page = [
            {k: v for k, v in m.items() if k != "channel" and (metadata or k != "metadata")}
            for m in found[start : start + limit]
        ]
        more = start + limit < len(found)
        return _ok(
            messages=page,
            has_more=more,
            response_metadata={"next_cursor": str(start + limit) if more else ""},
        )

    # ----------------------------------------------------------------- file uploads

    def _files_get_upload_url_external(self, params: Params) -> dict[str, Any]:
        filename, length = params.get("filename"), str(params.get("length") or "")
        if not filename:
            return _err("invalid_arguments", [_problem("missing required field", "/filename")])
        if not length.isdigit() or int(length) == 0:
            return _err("invalid_arguments", [_problem("must be a positive integer", "/length")])
        self._file_counter += 1
        file_id = f"F{self._file_counter:08d}"
        self._files[file_id] = {
            "id": file_id,
            "filename": str(filename),
            "length": int(length),
            "data": None,
        }
        base = self.url[: -len("api/")]
        return _ok(upload_url=f"{base}upload/{file_id}", file_id=file_id)

    def _receive_upload(self, file_id: str, body: bytes) -> tuple[int, str]:
        """The POST of a file's bytes to its upload URL; Slack answers in plain text."""
        with self._lock:
            entry = self._files.get(file_id)
            if entry is None:
                return 404, "file not found"
            if len(body) != entry["length"]:
                return 400, f"expected {entry['length']} bytes, got {len(body)}"
            entry["data"] = body
            return 200, f"OK - {len(body)}"

    def _files_complete_upload_external(self, params: Params) -> dict[str, Any]:
        raw = params.get("files")
        try:
            files = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            files = None
        if not isinstance(files, list) or not files:
            return _err("invalid_arguments", [_problem("must be a non-empty array", "/files")])
        comment = params.get("initial_comment")
        if comment is not None and len(str(comment)) > MAX_MESSAGE_TEXT:
            return _err("msg_too_long")
        entries = []
        for item in files:
            entry = self._files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if entry is None or entry["data"] is None:
                return _err("file_not_found")
            entries.append((entry, item))
        channel = params.get("channel_id") or None
        for entry, item in entries:
            entry.update(
                title=str(item.get("title") or entry["filename"]),
                channel_id=channel,
                initial_comment=comment,
                thread_ts=params.get("thread_ts"),
            )
        shared = [self._file_object(entry) for entry, _ in entries]
        if channel is not None:
            ts = self._next_ts()
            self._messages[(str(channel), ts)] = {
                "channel": str(channel),
                "type": "message",
                "user": BOT_USER_ID,
                "text": str(comment or ""),
                "files": shared,
                "ts": ts,
            }
        return _ok(files=shared)

    @staticmethod
    def _file_object(entry: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": entry["id"],
            "name": entry["filename"],
            "title": entry["title"],
            "size": entry["length"],
            "user": BOT_USER_ID,
        }
