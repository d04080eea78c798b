"""OAuth for the accounting sources: authorize links, code exchange, refresh before expiry and on a
401, rate limits and server errors, and tokens encrypted at rest. Against the local QuickBooks fake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.core.clock import FixedClock
from bot.core.errors import UserError
from integrations.base.ledger import Tokens
from integrations.errors import ReconnectNeeded, SourceUnavailable
from integrations.oauth import (
    MemoryTokenStore,
    Provider,
    authorize_url,
    exchange_code,
    parse_redirect,
    quickbooks_provider,
    refresh,
    xero_provider,
)
from integrations.oauth_client import OAuthClient
from tests.conftest import NOW
from tests.support.fake_quickbooks import CLIENT_ID, CLIENT_SECRET, REALM, FakeQuickBooks

REDIRECT = "http://localhost:8765/callback"


@pytest.fixture
def quickbooks() -> Iterator[FakeQuickBooks]:
    fake = FakeQuickBooks().start()
    yield fake
    fake.stop()


def _provider(fake: FakeQuickBooks, secret: str = CLIENT_SECRET) -> Provider:
    return quickbooks_provider(
        CLIENT_ID, secret, authorize_endpoint=fake.authorize_url, token_endpoint=fake.token_url
    )


def _store(expires_in: timedelta, refresh_token: str = "qb-refresh-0") -> MemoryTokenStore:
    tokens = Tokens("qb-access-0", refresh_token, NOW + expires_in, REALM)
    return MemoryTokenStore({"quickbooks": tokens})


class _Client:
    """An OAuthClient on the fake with a recorded (not real) sleep."""

    def __init__(self, fake: FakeQuickBooks, store: MemoryTokenStore, clock: FixedClock) -> None:
        self.sleeps: list[float] = []
        self.client = OAuthClient(_provider(fake), store, clock.now, sleep=self.sleeps.append)
        self.url = f"{fake.url}/v3/company/{REALM}/preferences"

    def get(self) -> object:
        return self.client.json("GET", self.url)


def _params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# --- The authorization code flow -----------------------------------------------------------


def test_quickbooks_authorize_url_asks_for_accounting_with_state_and_redirect() -> None:
    url = authorize_url(quickbooks_provider("app-id", "s"), "state-123", REDIRECT)
    assert url.startswith("https://appcenter.intuit.com/connect/oauth2?")
    assert _params(url) == {
        "client_id": "app-id",
        "response_type": "code",
        "scope": "com.intuit.quickbooks.accounting",
        "redirect_uri": REDIRECT,
        "state": "state-123",
    }


def test_xero_authorize_url_asks_for_offline_access_transactions_and_contacts() -> None:
    url = authorize_url(xero_provider("xero-app", "s"), "state-9", REDIRECT)
    assert url.startswith("https://login.xero.com/identity/connect/authorize?")
    params = _params(url)
    assert params["scope"] == "offline_access accounting.transactions accounting.contacts"
    assert (params["client_id"], params["state"], params["redirect_uri"]) == (
        "xero-app",
        "state-9",
        REDIRECT,
    )
    assert params["response_type"] == "code"


def test_a_pasted_redirect_gives_the_code_and_realm_and_must_carry_our_state() -> None:
    pasted = f"{REDIRECT}?code=AB11&state=s-1&realmId={REALM}\n"
    assert parse_redirect(pasted, "s-1").code == "AB11"
    assert parse_redirect(pasted, "s-1").realm_id == REALM
    assert parse_redirect("  AB11 ", "s-1").code == "AB11"  # a bare code is accepted too
    with pytest.raises(UserError, match="another attempt"):
        parse_redirect(pasted, "s-2")
    with pytest.raises(UserError, match="carries no code"):
        parse_redirect(f"{REDIRECT}?state=s-1", "s-1")
    with pytest.raises(UserError, match="refused: access_denied"):
        parse_redirect(f"{REDIRECT}?error=access_denied&state=s-1", "s-1")


def test_exchanging_the_code_gives_tokens_that_expire_an_hour_from_now(
    quickbooks: FakeQuickBooks,
) -> None:
    tokens = exchange_code(_provider(quickbooks), "the-code", REDIRECT, NOW, tenant_id=REALM)
    assert tokens == Tokens("qb-access-1", "qb-refresh-1", NOW + timedelta(hours=1), REALM)
    sent = quickbooks.requests[0]
    assert sent.body == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": REDIRECT,
    }
    assert sent.headers["authorization"].startswith("Basic ")
    with pytest.raises(ReconnectNeeded, match="refused the authorization code"):
        exchange_code(_provider(quickbooks), "the-code", REDIRECT, NOW)  # a code works once


# --- Keeping the access token fresh --------------------------------------------------------


def test_the_token_is_refreshed_before_it_expires_and_the_new_refresh_token_kept(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    store = _store(expires_in=timedelta(minutes=4))  # inside the 5-minute margin
    _Client(quickbooks, store, clock).get()
    assert [r.path for r in quickbooks.requests] == [
        "/oauth2/v1/tokens/bearer",
        f"/v3/company/{REALM}/preferences",
    ]
    assert quickbooks.requests[0].body == {
        "grant_type": "refresh_token",
        "refresh_token": "qb-refresh-0",
    }
    assert quickbooks.requests[1].headers["authorization"] == "Bearer qb-access-1"
    assert store.tokens["quickbooks"] == Tokens(
        "qb-access-1", "qb-refresh-1", NOW + timedelta(hours=1), REALM
    )


def test_a_token_with_time_left_is_used_as_it_is(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    store = _store(expires_in=timedelta(minutes=6))
    _Client(quickbooks, store, clock).get()
    assert [r.path for r in quickbooks.requests] == [f"/v3/company/{REALM}/preferences"]
    clock.advance(timedelta(minutes=2))  # now 4 minutes left: refreshed first
    _Client(quickbooks, store, clock).get()
    assert quickbooks.requests[1].path == "/oauth2/v1/tokens/bearer"


def test_a_401_refreshes_once_and_repeats_the_request(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    store = _store(expires_in=timedelta(hours=1))
    quickbooks.tokens.expire_access()  # revoked early, though its expiry is an hour away
    answer = _Client(quickbooks, store, clock).get()
    assert answer["Preferences"]["CurrencyPrefs"]["HomeCurrency"] == {"value": "USD"}  # type: ignore[index]
    assert [(r.method, r.path) for r in quickbooks.requests] == [
        ("GET", f"/v3/company/{REALM}/preferences"),
        ("POST", "/oauth2/v1/tokens/bearer"),
        ("GET", f"/v3/company/{REALM}/preferences"),
    ]
    assert store.tokens["quickbooks"].refresh_token == "qb-refresh-1"


def test_tokens_another_process_refreshed_meanwhile_are_used_not_refreshed_again(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    old = Tokens("qb-access-0", "qb-refresh-0", NOW + timedelta(hours=1), REALM)

    class RacedStore(MemoryTokenStore):
        """Hands out the old tokens, then (like another process) refreshes and saves new ones."""

        def load(self, provider: str) -> Tokens | None:
            if provider not in self.tokens:
                self.save(provider, refresh(_provider(quickbooks), old, NOW))
                return old
            return super().load(provider)

    store = RacedStore()
    _Client(quickbooks, store, clock).get()  # the old access token meets a 401
    refreshes = [r for r in quickbooks.requests if r.path == "/oauth2/v1/tokens/bearer"]
    assert len(refreshes) == 1  # only the other process's: the revoked refresh token is not sent
    assert quickbooks.api_calls()[-1].headers["authorization"] == "Bearer qb-access-1"


def test_a_401_after_a_fresh_token_asks_to_reconnect(
    quickbooks: FakeQuickBooks, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quickbooks.tokens, "allows", lambda authorization: False)
    with pytest.raises(ReconnectNeeded, match="even after a token refresh") as refused:
        _Client(quickbooks, _store(timedelta(hours=1)), clock).get()
    assert "run `arbot connect quickbooks` again" in str(refused.value)
    assert len(quickbooks.api_calls()) == 2  # once, then once more after the refresh


def test_a_refused_refresh_token_says_to_run_connect_again(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    store = _store(timedelta(minutes=-1), refresh_token="qb-refresh-revoked")
    with pytest.raises(ReconnectNeeded) as refused:
        _Client(quickbooks, store, clock).get()
    assert str(refused.value) == (
        "QuickBooks refused the refresh token: run `arbot connect quickbooks` again"
    )
    assert quickbooks.api_calls() == []


def test_wrong_app_credentials_name_the_settings_to_check(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    client = OAuthClient(_provider(quickbooks, "wrong"), _store(timedelta(0)), clock.now)
    with pytest.raises(UserError, match="QUICKBOOKS_CLIENT_ID and QUICKBOOKS_CLIENT_SECRET"):
        client.json("GET", f"{quickbooks.url}/v3/company/{REALM}/preferences")


def test_an_unconnected_provider_says_how_to_connect(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    client = OAuthClient(_provider(quickbooks), MemoryTokenStore(), clock.now)
    with pytest.raises(ReconnectNeeded, match="not connected: run `arbot connect quickbooks`"):
        client.json("GET", f"{quickbooks.url}/v3/company/{REALM}/preferences")


# --- Rate limits and server errors ------------------------------------------------------


def test_a_429_waits_as_long_as_retry_after_says_then_repeats(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    quickbooks.retry_after = "7"
    client = _Client(quickbooks, _store(timedelta(hours=1)), clock)
    assert "Preferences" in client.get()  # type: ignore[operator]
    assert client.sleeps == [7.0]
    assert len(quickbooks.api_calls()) == 2


def test_retry_after_may_be_an_http_date(quickbooks: FakeQuickBooks, clock: FixedClock) -> None:
    quickbooks.retry_after = format_datetime(NOW + timedelta(seconds=12), usegmt=True)
    client = _Client(quickbooks, _store(timedelta(hours=1)), clock)
    client.get()
    assert client.sleeps == [12.0]


def test_a_wait_beyond_the_cap_stops_and_says_when_to_try_again(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    quickbooks.retry_after = "3600"
    client = _Client(quickbooks, _store(timedelta(hours=1)), clock)
    with pytest.raises(SourceUnavailable, match="try again after 2026-03-16 15:00 UTC"):
        client.get()
    assert client.sleeps == []


def test_server_errors_are_retried_a_couple_of_times(
    quickbooks: FakeQuickBooks, clock: FixedClock
) -> None:
    quickbooks.server_errors = 2
    client = _Client(quickbooks, _store(timedelta(hours=1)), clock)
    client.get()
    assert client.sleeps == [1.0, 2.0]
    quickbooks.server_errors = 3
    with pytest.raises(SourceUnavailable, match=r"answered 503 .*try again later"):
        client.get()
