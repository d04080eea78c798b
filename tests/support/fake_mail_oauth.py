"""A local OAuth 2.0 token endpoint standing in for Google's and Microsoft's: it trades a code or
a refresh token for an access token, which it registers with the local SMTP server (and the IMAP
one) as valid for the mailbox, rotates refresh tokens when asked to (Microsoft does), and answers
invalid_grant once a grant is revoked. Every form it receives is recorded."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from tests.support.fake_http import JsonHandler, LocalServer

CLIENT_ID, CLIENT_SECRET = "mail-app-id", "mail-app-secret"
CODE = "mail-code"


class FakeMailOAuth(LocalServer):
    def __init__(self, address: str, accept: Callable[[str, str], None], rotate: bool = False):
        """`accept(token, address)` makes an access token valid on the mail servers."""
        self.address = address
        self.signs_in_as = address  # the `email` claim of the ID token a code is traded for
        self.accept = accept
        self.rotate = rotate  # a new refresh token on every refresh
        self.revoked = False
        self.expires_in = 3600
        self.forms: list[dict[str, str]] = []
        self.refresh_tokens: set[str] = set()
        self._issued = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = fake.answer(form)
                self.answer(status, body)

        super().__init__(Handler)

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/authorize"

    def answer(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.forms.append(form)
            if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
                return 401, {"error": "invalid_client"}
            grant = form.get("grant_type")
            if grant == "authorization_code" and form.get("code") == CODE:
                self.revoked = False
                return 200, {**self._tokens(new_refresh=True), "id_token": self._id_token()}
            known = form.get("refresh_token") in self.refresh_tokens
            if grant == "refresh_token" and known and not self.revoked:
                return 200, self._tokens(new_refresh=self.rotate)
            return 400, {"error": "invalid_grant", "error_description": "Token has been revoked."}

    def _tokens(self, new_refresh: bool) -> dict[str, Any]:
        self._issued += 1
        access = f"mail-access-{self._issued}"
        self.accept(access, self.address)
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": self.expires_in,
            "token_type": "Bearer",
        }
        if new_refresh:
            refresh = f"mail-refresh-{self._issued}"
            self.refresh_tokens.add(refresh)
            body["refresh_token"] = refresh
        return body

    def _id_token(self) -> str:
        def part(value: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

        claims = {"iss": self.url, "aud": CLIENT_ID, "sub": "1", "email": self.signs_in_as}
        return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"

    def revoke(self) -> None:
        """The person removed arbot's access (or an admin did): every refresh token is dead, and
        so is every access token already handed out (`forget` on the mail servers)."""
        with self._lock:
            self.revoked = True
            self.refresh_tokens.clear()
