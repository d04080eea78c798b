"""Twilio (the account's credentials, and that TWILIO_FROM is one of its numbers:
`GET /2010-04-01/Accounts/{Sid}/IncomingPhoneNumbers.json?PhoneNumber=`; that ARBOT_PUBLIC_URL is
set, which its webhooks' signatures are checked against) and Stripe (the key:
`GET /v1/account`; a webhook secret whenever payment links are on), each at the base URL the
app uses (TWILIO_API_URL, STRIPE_API_BASE)."""

from __future__ import annotations

from typing import Any

import httpx

from bot.core.settings import Settings
from integrations.doctor.findings import Finding, not_configured, ok, problem
from integrations.tls import http_client

TWILIO, STRIPE = "Twilio", "Stripe"
TWILIO_SETTINGS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM")


def check_twilio(settings: Settings, timeout: float) -> list[Finding]:
    found = _twilio_sending(settings, timeout)
    if found[0].status == "not_configured":
        return found
    return [*found, _twilio_webhooks(settings)]


def _twilio_webhooks(settings: Settings) -> Finding:
    """Twilio signs the address it called, and arbot checks the signature against
    ARBOT_PUBLIC_URL; without it, against the address the request arrived at, which behind a
    proxy that ends TLS reads http:// where Twilio signed https://, so every text is refused."""
    if settings.public_url:
        return ok(
            TWILIO,
            "webhooks",
            "texts and delivery reports are checked as signed for "
            f"{settings.public_url.rstrip('/')}/webhooks/twilio/... (ARBOT_PUBLIC_URL)",
        )
    return problem(
        TWILIO,
        "webhooks",
        "ARBOT_PUBLIC_URL is unset: Twilio's signatures are then checked against the address "
        "each request arrives at, and behind a proxy that ends TLS that is http:// where Twilio "
        "signed https://, so customers' texts are refused (401) and Twilio does not send them "
        "again; set ARBOT_PUBLIC_URL to the https:// address Twilio calls",
    )


def _twilio_sending(settings: Settings, timeout: float) -> list[Finding]:
    sid, token, sender = (
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        settings.twilio_from,
    )
    given = dict(zip(TWILIO_SETTINGS, (sid, token, sender), strict=True))
    missing = [name for name, value in given.items() if not value]
    if len(missing) == len(given):
        return [
            not_configured(
                TWILIO,
                "texts are off (set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM to "
                "send them)",
            )
        ]
    if missing:
        return [
            problem(
                TWILIO,
                "configured",
                f"set {' and '.join(missing)} too: texts need all of {', '.join(TWILIO_SETTINGS)}",
            )
        ]
    assert sid and token and sender
    if sender.startswith("MG"):  # a Messaging Service: it sends from numbers of its own pool
        return _twilio_account(settings, sid, token.get_secret_value(), sender, timeout)
    base = settings.twilio_api_url.rstrip("/")
    url = f"{base}/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json"
    try:
        with http_client(timeout=timeout, auth=(sid, token.get_secret_value())) as http:
            response = http.get(url, params={"PhoneNumber": sender})
    except httpx.HTTPError as exc:
        return [
            problem(
                TWILIO,
                "account",
                f"cannot reach Twilio at {base} ({type(exc).__name__}): check TWILIO_API_URL and "
                "the network",
            )
        ]
    body = _json(response)
    if response.status_code in (401, 403):
        return [
            problem(
                TWILIO,
                "account",
                "Twilio refused TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN "
                f"({_twilio_error(response, body)}): copy both from the Twilio console's Account "
                "Info",
            )
        ]
    if response.status_code == 404:
        return [
            problem(
                TWILIO,
                "account",
                f"Twilio knows no account {sid} ({_twilio_error(response, body)}): check "
                "TWILIO_ACCOUNT_SID",
            )
        ]
    if response.status_code != 200:
        return [
            problem(
                TWILIO,
                "account",
                f"Twilio answered {response.status_code} ({_twilio_error(response, body)}): try "
                "again later",
            )
        ]
    numbers = body.get("incoming_phone_numbers") if isinstance(body, dict) else None
    owned = [n for n in numbers or [] if isinstance(n, dict) and n.get("phone_number") == sender]
    found = [
        ok(TWILIO, "account", f"TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN work (account {sid})")
    ]
    if not owned:
        found.append(
            problem(
                TWILIO,
                "from",
                f"TWILIO_FROM {sender} is not a phone number of account {sid}: set it to one of "
                "the account's numbers, in E.164 (+15551234567)",
            )
        )
    else:
        found.append(ok(TWILIO, "from", f"TWILIO_FROM {sender} belongs to the account"))
    return found


def _twilio_account(
    settings: Settings, sid: str, token: str, service: str, timeout: float
) -> list[Finding]:
    """The credentials only, by reading the account (`GET /2010-04-01/Accounts/{Sid}.json`)."""
    url = f"{settings.twilio_api_url.rstrip('/')}/2010-04-01/Accounts/{sid}.json"
    try:
        with http_client(timeout=timeout, auth=(sid, token)) as http:
            response = http.get(url)
    except httpx.HTTPError as exc:
        return [
            problem(
                TWILIO,
                "account",
                f"cannot reach Twilio ({type(exc).__name__}): check TWILIO_API_URL and the network",
            )
        ]
    if response.status_code != 200:
        return [
            problem(
                TWILIO,
                "account",
                "Twilio refused TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN "
                f"({_twilio_error(response, _json(response))}): copy both from the Twilio "
                "console's Account Info",
            )
        ]
    return [
        ok(TWILIO, "account", f"TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN work (account {sid})"),
        ok(
            TWILIO,
            "from",
            f"TWILIO_FROM {service} is a Messaging Service: the numbers it sends from are not "
            "checked",
        ),
    ]


def check_stripe(settings: Settings, timeout: float) -> list[Finding]:
    if not settings.stripe_api_key:
        if settings.stripe_webhook_secret:
            return [
                problem(
                    STRIPE,
                    "configured",
                    "STRIPE_WEBHOOK_SECRET is set but STRIPE_API_KEY is not: payment links need "
                    "the key",
                )
            ]
        return [
            not_configured(
                STRIPE,
                "payment links are off (set STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET to put one "
                "in each reminder)",
            )
        ]
    base = settings.stripe_api_base.rstrip("/")
    found: list[Finding] = []
    try:
        with http_client(timeout=timeout) as http:
            response = http.get(
                f"{base}/v1/account",
                headers={"Authorization": f"Bearer {settings.stripe_api_key.get_secret_value()}"},
            )
    except httpx.HTTPError as exc:
        found.append(
            problem(
                STRIPE,
                "key",
                f"cannot reach Stripe at {base} ({type(exc).__name__}): check STRIPE_API_BASE "
                "and the network",
            )
        )
    else:
        body = _json(response)
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        if response.status_code == 401:
            found.append(
                problem(
                    STRIPE,
                    "key",
                    f"Stripe refused STRIPE_API_KEY ({message or 'invalid key'}): copy a secret "
                    "or restricted key from the Stripe dashboard's API keys",
                )
            )
        elif response.status_code == 403:
            found.append(
                problem(
                    STRIPE,
                    "key",
                    f"STRIPE_API_KEY may not read the account ({message or 'forbidden'}): a "
                    "restricted key needs write access to Prices and Payment Links",
                )
            )
        elif response.status_code != 200:
            found.append(
                problem(
                    STRIPE,
                    "key",
                    f"Stripe answered {response.status_code} ({message or 'no reason given'}): "
                    "try again later",
                )
            )
        else:
            key = settings.stripe_api_key.get_secret_value()
            mode = "live" if key.startswith(("sk_live", "rk_live")) else "test"
            dashboard = (body.get("settings") or {}).get("dashboard") or {}
            name = dashboard.get("display_name") or body.get("id") or "?"
            found.append(ok(STRIPE, "key", f"STRIPE_API_KEY works: account {name} ({mode} mode)"))
    secret = (
        settings.stripe_webhook_secret.get_secret_value() if settings.stripe_webhook_secret else ""
    )
    if secret and not secret.strip().startswith("whsec_"):
        found.append(
            problem(
                STRIPE,
                "webhook",
                "STRIPE_WEBHOOK_SECRET does not look like an endpoint's signing secret (whsec_…): "
                "copy it from the webhook endpoint's page in Stripe, not the API key",
            )
        )
    elif secret:
        found.append(
            ok(
                STRIPE,
                "webhook",
                "STRIPE_WEBHOOK_SECRET is set (signatures on /webhooks/stripe can be checked)",
            )
        )
    else:
        found.append(
            problem(
                STRIPE,
                "webhook",
                "payment links are on but STRIPE_WEBHOOK_SECRET is unset: a payment by link "
                "would never be seen; add an endpoint for <ARBOT_PUBLIC_URL>/webhooks/stripe in "
                "Stripe and set its signing secret (whsec_…)",
            )
        )
    return found


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def _twilio_error(response: httpx.Response, body: Any) -> str:
    if isinstance(body, dict) and body.get("message"):
        code = f" {body['code']}" if body.get("code") else ""
        return f"error{code}: {body['message']}"
    return f"HTTP {response.status_code}"
