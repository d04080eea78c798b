"""Source tokens in the database: encrypted, one row per provider, and the refresh token a provider
rotates is saved so the next process can still refresh. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from bot.core.clock import FixedClock
from bot.core.errors import UserError
from bot.core.models import SourceToken
from bot.core.runtime import Runtime, start
from bot.core.settings import load_settings
from bot.ledger.source_tokens import DatabaseTokenStore, TokenCipher
from integrations.base.ledger import Tokens
from integrations.oauth import quickbooks_provider
from integrations.oauth_client import OAuthClient
from tests.conftest import NOW
from tests.support.fake_quickbooks import CLIENT_ID, CLIENT_SECRET, REALM, FakeQuickBooks

SECRET = "correct horse battery staple, but longer"


@pytest.fixture
def keyed_runtime(database_url: str, clock: FixedClock) -> Iterator[Runtime]:
    settings = load_settings(env_file=None, database_url=database_url, secret_key=SECRET)
    runtime = start(settings, clock=clock)
    yield runtime
    runtime.close()


def _tokens(access: str = "qb-access-0", refresh: str = "qb-refresh-0") -> Tokens:
    return Tokens(access, refresh, NOW + timedelta(hours=1), REALM)


def test_saved_tokens_load_back_and_the_table_holds_none_of_them(
    keyed_runtime: Runtime,
) -> None:
    store = DatabaseTokenStore(keyed_runtime)
    store.save("quickbooks", _tokens())
    assert DatabaseTokenStore(keyed_runtime).load("quickbooks") == _tokens()
    assert store.load("xero") is None
    with keyed_runtime.sessions() as session:
        row = session.scalars(select(SourceToken)).one()
        dump = " ".join(str(v) for v in session.execute(text("SELECT * FROM source_tokens")).one())
    assert (row.provider, row.tenant_id, row.expires_at) == (
        "quickbooks",
        REALM,
        _tokens().expires_at,
    )
    assert row.updated_at == NOW
    assert "qb-access-0" not in dump and "qb-refresh-0" not in dump


def test_a_second_save_replaces_the_first(keyed_runtime: Runtime, clock: FixedClock) -> None:
    store = DatabaseTokenStore(keyed_runtime)
    store.save("quickbooks", _tokens())
    clock.advance(timedelta(minutes=55))
    store.save("quickbooks", _tokens("qb-access-1", "qb-refresh-1"))
    store.save("xero", _tokens("xero-access", "xero-refresh"))
    assert store.load("quickbooks") == _tokens("qb-access-1", "qb-refresh-1")
    with keyed_runtime.sessions() as session:
        rows = session.scalars(select(SourceToken).order_by(SourceToken.provider)).all()
    assert [r.provider for r in rows] == ["quickbooks", "xero"]
    assert rows[0].updated_at == NOW + timedelta(minutes=55)


def test_tokens_saved_under_another_key_give_a_clear_error(keyed_runtime: Runtime) -> None:
    DatabaseTokenStore(keyed_runtime).save("xero", _tokens())
    other = DatabaseTokenStore(keyed_runtime, TokenCipher("some other key"))
    with pytest.raises(UserError, match="cannot be decrypted with this ARBOT_SECRET_KEY"):
        other.load("xero")


def test_without_a_secret_key_the_store_refuses_to_keep_tokens(runtime: Runtime) -> None:
    with pytest.raises(UserError, match="ARBOT_SECRET_KEY is not set"):
        DatabaseTokenStore(runtime)


def test_a_rotated_refresh_token_is_saved_and_the_next_process_refreshes_with_it(
    keyed_runtime: Runtime, clock: FixedClock
) -> None:
    fake = FakeQuickBooks().start()
    try:
        provider = quickbooks_provider(CLIENT_ID, CLIENT_SECRET, token_endpoint=fake.token_url)
        url = f"{fake.url}/v3/company/{REALM}/preferences"
        DatabaseTokenStore(keyed_runtime).save(
            "quickbooks", Tokens("qb-access-0", "qb-refresh-0", NOW + timedelta(minutes=3), REALM)
        )
        first = OAuthClient(provider, DatabaseTokenStore(keyed_runtime), clock.now)
        first.json("GET", url)
        first.close()
        saved = DatabaseTokenStore(keyed_runtime).load("quickbooks")
        assert saved == Tokens("qb-access-1", "qb-refresh-1", NOW + timedelta(hours=1), REALM)

        clock.advance(timedelta(minutes=58))  # the next run: refresh again, with the new token
        second = OAuthClient(provider, DatabaseTokenStore(keyed_runtime), clock.now)
        second.json("GET", url)
        second.close()
    finally:
        fake.stop()
    refreshes = [r.body for r in fake.requests if r.path == "/oauth2/v1/tokens/bearer"]
    assert [body["refresh_token"] for body in refreshes] == ["qb-refresh-0", "qb-refresh-1"]
    assert DatabaseTokenStore(keyed_runtime).load("quickbooks").refresh_token == "qb-refresh-2"  # type: ignore[union-attr]


def test_tokens_survive_encryption_and_the_ciphertext_shows_none_of_them() -> None:
    tokens = Tokens("access-AAA", "refresh-BBB", NOW + timedelta(hours=1), REALM)
    cipher = TokenCipher("a long random secret key for tests")
    ciphertext = cipher.encrypt(tokens)
    assert "access-AAA" not in ciphertext and "refresh-BBB" not in ciphertext
    assert cipher.decrypt(ciphertext, "quickbooks") == tokens
    assert TokenCipher("a long random secret key for tests").decrypt(ciphertext, "xero") == tokens


def test_another_key_gives_a_clear_error_not_garbage() -> None:
    tokens = Tokens("access-AAA", "refresh-BBB", NOW, REALM)
    ciphertext = TokenCipher("the key it was saved with").encrypt(tokens)
    with pytest.raises(UserError) as wrong:
        TokenCipher("a different key").decrypt(ciphertext, "xero")
    assert "cannot be decrypted with this ARBOT_SECRET_KEY" in str(wrong.value)
    assert "`arbot connect xero`" in str(wrong.value)
    with pytest.raises(UserError, match="ARBOT_SECRET_KEY is not set"):
        TokenCipher("")
