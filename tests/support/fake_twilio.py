"""A local stand-in for Twilio's Messages API: records each message, answers like Twilio."""

from __future__ import annotations

import base64
import threading
from urllib.parse import parse_qs

from tests.support.fake_http import JsonHandler, LocalServer

SID = "AC0000000000000000000000000000test"
TOKEN = "twilio-test-token"


class FakeTwilio(LocalServer):
    def __init__(self) -> None:
        self.messages: list[dict[str, str]] = []
        self.errors: dict[str, tuple[int, int | None, str]] = {}  # To -> (status, code, message)
        self.hang_up_after_reading = False  # take the message, then close without answering
        self.lock = threading.Lock()
        fake = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self.answer(401, {"code": 20003, "message": "Authenticate"})
                if not self.path.endswith(f"/Accounts/{SID}/Messages.json"):
                    return self.answer(404, {"code": 20404, "message": "not found"})
                if fake.hang_up_after_reading:
                    with fake.lock:
                        fake.messages.append(form)
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                error = fake.errors.get(form.get("To", ""))
                if error:
                    status, code, message = error
                    return self.answer(status, {"code": code, "message": message, "status": status})
                with fake.lock:
                    fake.messages.append(form)
                    sid = f"SM{len(fake.messages):032d}"
                return self.answer(201, {"sid": sid, "status": "queued", "to": form.get("To")})

        super().__init__(Handler)
