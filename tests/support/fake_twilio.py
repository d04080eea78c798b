"""A local stand-in for Twilio's Messages API (records each message, answers like Twilio), the
account itself and its IncomingPhoneNumbers list, filtered by `PhoneNumber` as Twilio's is."""

from __future__ import annotations

import base64
import threading
from urllib.parse import parse_qs, urlsplit

from tests.support.fake_http import JsonHandler, LocalServer

SID = "AC0000000000000000000000000000test"
TOKEN = "twilio-test-token"


class FakeTwilio(LocalServer):
    def __init__(self) -> None:
        self.messages: list[dict[str, str]] = []
        self.errors: dict[str, tuple[int, int | None, str]] = {}  # To -> (status, code, message)
        self.hang_up_after_reading = False  # take the message, then close without answering
        self.numbers: list[str] = ["+15005550006"]  # the account's phone numbers (E.164)
        self.lock = threading.Lock()
        fake = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self.answer(
                        401,
                        {
                            "code": 20003,
                            "message": "Authenticate",
                            "more_info": "https://www.twilio.com/docs/errors/20003",
                            "status": 401,
                        },
                    )
                split = urlsplit(self.path)
                if split.path == f"/2010-04-01/Accounts/{SID}.json":
                    return self.answer(
                        200,
                        {"sid": SID, "friendly_name": "Brightwater", "status": "active"},
                    )
                if split.path != f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json":
                    return self.answer(404, {"code": 20404, "message": "not found", "status": 404})
                wanted = parse_qs(split.query).get("PhoneNumber", [None])[0]
                listed = [n for n in fake.numbers if wanted in (None, n)]
                return self.answer(
                    200,
                    {
                        "incoming_phone_numbers": [
                            {
                                "sid": f"PN{i:032d}",
                                "account_sid": SID,
                                "phone_number": number,
                                "friendly_name": number,
                                "capabilities": {"sms": True, "mms": True, "voice": True},
                            }
                            for i, number in enumerate(listed)
                        ],
                        "page": 0,
                        "page_size": 50,
                        "next_page_uri": None,
                    },
                )

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
