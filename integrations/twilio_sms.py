"""SMS through Twilio's Messages REST API with httpx (TWILIO_API_URL overridable for tests), and
the X-Twilio-Signature check for Twilio's webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

import httpx

from integrations.base.outbound import Delivery, Outgoing
from integrations.tls import http_client

# How texts are counted is the linter's and the Edit form's too: one definition, in playbooks.sms.
from playbooks.sms import MAX_SEGMENTS as MAX_SEGMENTS
from playbooks.sms import segments as segments
from playbooks.sms import segments_problem

TIMEOUT_SECONDS = 20
# Twilio error codes that are about the number itself: never retry, never use it again.
UNSUBSCRIBED = 21610  # the recipient replied STOP: they opted out
NUMBER_UNUSABLE = {21211, 21214, 21612, 21614}  # invalid, unreachable, not a mobile, ...
ACCOUNT_PROBLEM = {20003, 21606, 21659}  # auth, From not ours: stop
# Twilio error codes that refuse one destination for a setting of our account, not the number
# itself: that text fails with what a person can do, and the other texts go.
DESTINATION_REFUSED = {
    21408: "texts to this number's country or region are not enabled in the Twilio account; "
    "enable it in Twilio's console (Messaging > Settings > Geo permissions), then send a new "
    "reminder, or reach the customer another way",
}


class TwilioSender:
    def __init__(
        self,
        api_url: str,
        account_sid: str,
        auth_token: str,
        sender: str,
        status_callback: str | None,
    ) -> None:
        self.api_url = api_url
        self.url = f"{api_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.auth = (account_sid, auth_token)
        self.sender = sender
        self.status_callback = status_callback
        self._client: httpx.Client | None = None

    def __enter__(self) -> TwilioSender:
        self._client = http_client(timeout=TIMEOUT_SECONDS, auth=self.auth)
        return self

    def another(self) -> TwilioSender:
        """A sender like this one, on an HTTP client of its own (for sending side by side)."""
        account_sid, auth_token = self.auth
        return TwilioSender(
            self.api_url, account_sid, auth_token, self.sender, self.status_callback
        )

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def send(self, message: Outgoing) -> Delivery:
        if not message.to.startswith("+"):
            return Delivery(
                "permanent", error=f"{message.to} is not an E.164 number", address_unusable=True
            )
        too_long = segments_problem(message.text)
        if too_long:
            return Delivery("permanent", error=f"the text {too_long}")
        form = {"To": message.to, "Body": message.text}
        form["MessagingServiceSid" if self.sender.startswith("MG") else "From"] = self.sender
        callback = message.status_callback or self.status_callback
        if callback:
            form["StatusCallback"] = callback
        assert self._client is not None, "use the sender as a context manager"
        try:
            response = self._client.post(self.url, data=form)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:  # never left: our setting
            return Delivery(
                "outage",
                error=f"TWILIO_API_URL cannot be used ({exc}); give a URL such as "
                "https://api.twilio.com",
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing was handed over
            return Delivery("transient", error=f"Twilio unreachable: {exc}")
        except httpx.TransportError as exc:  # the request went; its answer did not come back
            return Delivery("unknown", error=f"no answer from Twilio after sending: {exc}")
        if response.status_code in (200, 201):
            return Delivery("sent", provider_id=str(response.json().get("sid")))
        return _failure(response)


def _failure(response: httpx.Response) -> Delivery:
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = body.get("code")
    text = f"Twilio {response.status_code} {code or ''} {body.get('message', response.text[:200])}".strip()
    if response.status_code == 429 or response.status_code >= 500:
        return Delivery("transient", error=text)
    if code == UNSUBSCRIBED:
        return Delivery("permanent", error=text, opted_out=True)
    if code in DESTINATION_REFUSED:
        return Delivery("permanent", error=f"{text}: {DESTINATION_REFUSED[code]}")
    if response.status_code in (401, 403) or code in ACCOUNT_PROBLEM:
        return Delivery("outage", error=text)
    return Delivery("permanent", error=text, address_unusable=code in NUMBER_UNUSABLE)


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Base64 HMAC-SHA1 of the full public URL followed by each POST parameter, sorted by name."""
    data = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def valid_twilio_request(
    auth_token: str, url: str, params: Mapping[str, str], signature: str
) -> bool:
    expected = twilio_signature(auth_token, url, params).encode()
    return hmac.compare_digest(expected, (signature or "").encode("utf-8", errors="replace"))
