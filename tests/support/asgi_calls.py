"""Requests handed straight to the real ASGI app, without a server in between: any method, path,
header bytes and body chunks, however malformed (a server would refuse some before the app sees
them; the app must cope with all of them anyway), and many of them quickly."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message

from bot.core.runtime import Runtime
from bot.workspaces.registry import Workspaces
from tests.support.slack_requests import PATIENCE


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class AsgiCalls:
    """One event loop for many calls to one app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.runner = asyncio.Runner()

    def close(self) -> None:
        from handlers.app import finish_work

        finish_work(self.app)  # what the calls started after their acks ends with them
        self.runner.close()

    def call(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        chunks: list[bytes] | None = None,
        query: bytes = b"",
        client: tuple[str, int] = ("127.0.0.1", 50000),
    ) -> Answer:
        return self.runner.run(
            self._call(method, path, headers or [], chunks or [b""], query, client)
        )

    async def _call(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        chunks: list[bytes],
        query: bytes,
        client: tuple[str, int],
    ) -> Answer:
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("utf-8"),
            "query_string": query,
            "root_path": "",
            "headers": [(name.lower(), value) for name, value in headers],
            "client": client,
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        pending = [
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
            for i, chunk in enumerate(chunks)
        ]
        answer = Answer(status=0)

        async def receive() -> Message:
            if pending:
                return pending.pop(0)
            await asyncio.sleep(PATIENCE)  # a client that sent everything waits for the answer
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.status = int(message["status"])
                answer.headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                answer.body += message.get("body", b"")

        await self.app(scope, receive, send)
        return answer


@contextmanager
def asgi_calls(runtime: Runtime, workspaces: Workspaces | None = None) -> Iterator[AsgiCalls]:
    """The app `arbot serve` runs for `runtime` (and `workspaces`), called directly."""
    from handlers.app import create_app
    from handlers.slack import build_bolt
    from integrations.slack_chat import web_client

    bolt = build_bolt(runtime, web_client("xoxb-test", runtime.settings.slack_api_url))
    calls = AsgiCalls(create_app(runtime, bolt, workspaces=workspaces))
    try:
        yield calls
    finally:
        calls.close()
