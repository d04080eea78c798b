"""A local stand-in for Twilio's Messages API: records each message, answers like Twilio."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

SID = "AC0000000000000000000000000000test"
TOKEN = "twilio-test-token"


class FakeTwilio:
    def __init__(self) -> None:
        self.messages: list[dict[str, str]] = []
        self.errors: dict[str, tuple[int, int | None, str]] = {}  # To -> (status, code, message)
        self.hang_up_after_reading = False  # take the message, then close without answering
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self._answer(401, {"code": 20003, "message": "Authenticate"})
                if not self.path.endswith(f"/Accounts/{SID}/Messages.json"):
                    return self._answer(404, {"code": 20404, "message": "not found"})
                if fake.hang_up_after_reading:
                    with fake.lock:
                        fake.messages.append(form)
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                error = fake.errors.get(form.get("To", ""))
                if error:
                    status, code, message = error
                    return self._answer(
                        status, {"code": code, "message": message, "status": status}
                    )
                with fake.lock:
                    fake.messages.append(form)
                    sid = f"SM{len(fake.messages):032d}"
                return self._answer(201, {"sid": sid, "status": "queued", "to": form.get("To")})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeTwilio:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"
