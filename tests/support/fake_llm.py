"""A local stand-in for an OpenAI-compatible chat completions API, scripted by the test.

It records every request (path, Authorization header, JSON body) and answers with what the test
set: a model's JSON text, a body that is not JSON, an HTTP error, or nothing until released (to
make the client time out without sleeping).
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass
from typing import Any

from tests.support.fake_http import JsonHandler, LocalServer

PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class SeenRequest:
    path: str
    authorization: str | None
    body: dict[str, Any]


class FakeLlm(LocalServer):
    def __init__(self) -> None:
        self.released = threading.Event()
        self.reset()
        fake = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(
                    SeenRequest(self.path, self.headers.get("Authorization"), body)
                )
                if fake.holding:
                    fake.released.wait(timeout=30)
                # The client may have given up waiting, as a timeout test wants.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    fake.respond(self)

        super().__init__(Handler)

    def reset(self) -> None:
        """Forget the requests and answer a plain valid completion again."""
        self.requests: list[SeenRequest] = []
        self.status = 200
        self.content: str | None = json.dumps({"label": "other", "confidence": 0.5})
        self.raw_body: bytes | None = None  # sent as is instead of a chat completion
        self.holding = False
        self.released.set()  # let go of any request still held
        self.released = threading.Event()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def answers(self, **fields: Any) -> None:
        """The model answers this JSON object."""
        self.content = json.dumps(fields)

    def answers_text(self, content: str | None) -> None:
        """The model answers this text as its message content (not necessarily JSON)."""
        self.content = content

    def fails(self, status: int) -> None:
        self.status = status

    def sends_raw(self, body: bytes) -> None:
        self.raw_body = body

    def hangs(self) -> None:
        """Reads the request and answers nothing until the server stops."""
        self.holding = True

    def stop(self) -> None:
        self.released.set()
        super().stop()

    def respond(self, handler: JsonHandler) -> None:
        if handler.path != PATH:
            return handler.answer(404, {"error": {"message": f"no route {handler.path}"}})
        if self.status != 200:
            return handler.answer(self.status, {"error": {"message": "the fake was told to fail"}})
        if self.raw_body is not None:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(self.raw_body)))
            handler.end_headers()
            handler.wfile.write(self.raw_body)
            return None
        message = {"role": "assistant", "content": self.content}
        return handler.answer(
            200,
            {"id": "chatcmpl-test", "object": "chat.completion", "choices": [{"message": message}]},
        )
