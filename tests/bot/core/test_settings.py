"""Settings come from the environment and `.env` under DESIGN's names; a bad one names itself."""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path

import pytest

from bot.core import settings
from bot.core.clock import FixedClock, SystemClock
from bot.core.errors import UserError
from bot.core.settings import Settings, load_settings

DESIGN_NAMES = [
    "DATABASE_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "ARBOT_FINANCE_CHANNEL",
    "ARBOT_ESCALATION_CHANNEL",
    "ARBOT_APPROVERS",
    "ARBOT_TIMEZONE",
    "ARBOT_PUBLIC_URL",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USER",
    "SMTP_PASSWORD",
    "SMTP_STARTTLS",
    "ARBOT_FROM_EMAIL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM",
    "TWILIO_API_URL",
    "STRIPE_API_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE",
    "ARBOT_INBOUND_EMAIL_SECRET",
    "ARBOT_NOW",
    "HUBSPOT_TOKEN",
    "HUBSPOT_API_URL",
    "LLM_BASE_URL",
    "LLM_MODEL",
    "LLM_API_KEY",
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in DESIGN_NAMES:
        monkeypatch.delenv(name, raising=False)


def _env_names() -> set[str]:
    names = set()
    for info in Settings.model_fields.values():
        names.add(info.validation_alias.choices[0])  # type: ignore[union-attr]
    return names


def test_every_setting_named_in_design_is_read() -> None:
    assert set(DESIGN_NAMES) <= _env_names()
    for prefix in ("QUICKBOOKS_", "XERO_", "FRESHBOOKS_", "HUBSPOT_", "PIPEDRIVE_"):
        assert any(name.startswith(prefix) for name in _env_names()), prefix


def test_defaults_need_nothing_set() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///arbot.db"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert isinstance(settings.clock(), SystemClock)


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBOT_APPROVERS", "U01AAA, U02BBB,")
    monkeypatch.setenv("SMTP_PORT", "2525")
    monkeypatch.setenv("SMTP_STARTTLS", "false")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9999/api/")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_abc")
    settings = load_settings()
    assert settings.approvers == ["U01AAA", "U02BBB"]
    assert (settings.smtp_port, settings.smtp_starttls) == (2525, False)
    assert settings.slack_api_url == "http://127.0.0.1:9999/api/"
    assert "whsec_abc" not in repr(settings)  # secrets do not print


def test_values_come_from_a_dot_env_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ARBOT_TIMEZONE=America/Chicago\nARBOT_FINANCE_CHANNEL=C0FIN\n")
    settings = load_settings()
    assert settings.timezone == "America/Chicago"
    assert settings.finance_channel == "C0FIN"


def test_arbot_now_fixes_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBOT_NOW", "2026-03-16T09:00:00-04:00")
    clock = load_settings().clock()
    assert isinstance(clock, FixedClock)
    assert clock.now() == datetime(2026, 3, 16, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "ARBOT_TIMEZONE",
            "Central",
            "ARBOT_TIMEZONE: Value error, 'Central' is not an IANA timezone",
        ),
        (
            "ARBOT_TIMEZONE",
            "localtime",
            "ARBOT_TIMEZONE: Value error, 'localtime' is not an IANA timezone",
        ),
        (
            "ARBOT_TIMEZONE",
            "Factory",
            "ARBOT_TIMEZONE: Value error, 'Factory' is not an IANA timezone",
        ),
        ("ARBOT_NOW", "2026-03-16T09:00:00", "ARBOT_NOW: Value error, needs a timezone"),
        ("SMTP_PORT", "twenty-five", "SMTP_PORT:"),
    ],
)
def test_a_bad_setting_is_a_user_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(UserError, match="bad setting") as caught:
        load_settings()
    assert message in str(caught.value)


def test_only_the_documented_variable_names_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOW", "2020-01-01T00:00:00Z")
    monkeypatch.setenv("TIMEZONE", "Asia/Tokyo")
    monkeypatch.setenv("APPROVERS", "U1")
    settings = load_settings()
    assert (settings.now, settings.timezone, settings.approvers) == (None, "UTC", [])


def test_overrides_by_field_name_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:///from-env.db")
    assert load_settings(database_url="sqlite:///given.db").database_url == "sqlite:///given.db"
    with pytest.raises(TypeError, match="no such setting: databse_url"):
        load_settings(databse_url="x")


def test_a_mailbox_preset_fills_in_only_what_was_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBOT_MAILBOX", "microsoft365")
    monkeypatch.setenv("IMAP_HOST", "imap.internal.example")
    settings = load_settings(env_file=None)
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_starttls) == (
        "smtp.office365.com",
        587,
        True,
    )
    assert (settings.imap_host, settings.imap_port) == ("imap.internal.example", 993)


def test_an_unknown_mailbox_preset_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBOT_MAILBOX", "yahoo")
    with pytest.raises(UserError, match="ARBOT_MAILBOX"):
        load_settings(env_file=None)


@pytest.mark.parametrize(("given", "region"), [("us", "US"), ("gb", "GB"), ("DE", "DE")])
def test_the_phone_region_is_a_country_code_in_capitals(given: str, region: str) -> None:
    assert load_settings(env_file=None, phone_region=given).phone_region == region


def test_an_unknown_phone_region_names_its_variable() -> None:
    with pytest.raises(UserError, match="ARBOT_PHONE_REGION"):
        load_settings(env_file=None, phone_region="ZZ")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ARBOT_SEND_WINDOW", "09:00Z-17:00Z"),
        ("ARBOT_SEND_WINDOW", "09:00-17:00+02:00"),
        ("ARBOT_MORNING_TIME", "08:00Z"),
        ("ARBOT_MORNING_TIME", "08:00-05:00"),
    ],
)
def test_a_wall_clock_setting_with_a_utc_offset_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """The send window is read in each contact's zone and the morning time in ARBOT_TIMEZONE: an
    offset would be accepted here and then crash comparing it with a local time."""
    monkeypatch.setenv(name, value)
    with pytest.raises(UserError, match="bad setting") as caught:
        load_settings(env_file=None)
    assert f"{name}: Value error" in str(caught.value)
    assert "without a timezone" in str(caught.value)


def test_wall_clock_settings_without_an_offset_still_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBOT_SEND_WINDOW", "08:30-18:00")
    monkeypatch.setenv("ARBOT_MORNING_TIME", "07:45")
    settings = load_settings(env_file=None)
    assert settings.window() == (time(8, 30), time(18))
    assert settings.morning_time == time(7, 45)


@pytest.mark.parametrize("zone", ["UTC", "Etc/GMT+5", "America/New_York", "Asia/Tokyo"])
def test_every_iana_timezone_is_a_business_timezone(zone: str) -> None:
    assert load_settings(env_file=None, timezone=zone).timezone == zone


@pytest.mark.parametrize(
    "zone",
    [
        "posix/Factory",
        "right/Factory",
        "posixrules",
        "right/America/New_York",  # counts leap seconds: 27 s off every clock
        "right/UTC",
        "POSIX/factory",  # as a case-insensitive file system finds it
    ],
)
def test_zone_files_that_are_not_places_are_refused_as_unknown_zones(
    monkeypatch: pytest.MonkeyPatch, zone: str
) -> None:
    monkeypatch.setenv("ARBOT_TIMEZONE", zone)
    with pytest.raises(UserError) as refused:
        load_settings(env_file=None)
    assert f"ARBOT_TIMEZONE: Value error, {zone!r} is not an IANA timezone" in str(refused.value)


@pytest.mark.parametrize(
    "url", ["api.twilio.com", "ftp://api.twilio.com", "https://", "https://api.twilio.com:99999"]
)
def test_a_twilio_api_url_that_cannot_be_used_is_refused_naming_the_variable(url: str) -> None:
    with pytest.raises(UserError) as refused:
        load_settings(env_file=None, twilio_api_url=url)
    assert "TWILIO_API_URL" in str(refused.value) and "https://api.twilio.com" in str(refused.value)


@pytest.mark.parametrize("url", ["https://api.twilio.com", "http://127.0.0.1:8099/"])
def test_a_twilio_api_url_with_its_scheme_loads(url: str) -> None:
    assert load_settings(env_file=None, twilio_api_url=url).twilio_api_url == url


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_twilio_api_url_means_the_default(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_API_URL", value)
    assert load_settings(env_file=None).twilio_api_url == "https://api.twilio.com"
    monkeypatch.delenv("TWILIO_API_URL")
    env = tmp_path / ".env"
    env.write_text(f"SMTP_HOST=mail.example\nTWILIO_API_URL={value}\n", encoding="utf-8")
    assert load_settings(env_file=str(env)).twilio_api_url == "https://api.twilio.com"


def test_a_reading_again_is_a_copy_of_its_own_with_the_values_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARBOT_TIMEZONE", "Europe/Paris")
    first = load_settings(env_file=None, control_share=Decimal("0.1"))
    first.timezone = "Asia/Tokyo"  # a caller changing its own copy

    again = load_settings(env_file=None, control_share=Decimal("0.10"))

    assert again.timezone == "Europe/Paris"
    assert str(again.control_share) == "0.10"
    monkeypatch.setenv("ARBOT_TIMEZONE", "America/Chicago")
    assert load_settings(env_file=None, control_share=Decimal("0.10")).timezone == "America/Chicago"


def test_readings_with_other_values_given_see_the_environment_and_env_file_as_they_are_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the environment and `.env` give is remembered between readings that differ in a
    value given (each test's or command's own database): a variable set, changed or removed
    since, and a `.env` edited, still count, and a list read is each reading's own."""
    env = tmp_path / ".env"
    env.write_text("SMTP_HOST=mail.example\nSOMETHING_ELSE=1\n", encoding="utf-8")
    monkeypatch.setenv("ARBOT_APPROVERS", "U1,U2")
    first = load_settings(env_file=str(env), database_url="sqlite:///one.db")
    first.approvers.append("U3")  # a caller changing its own reading

    second = load_settings(env_file=str(env), database_url="sqlite:///two.db")
    assert (second.approvers, second.smtp_host) == (["U1", "U2"], "mail.example")

    monkeypatch.setenv("ARBOT_APPROVERS", "U4")
    monkeypatch.setenv("ARBOT_TIMEZONE", "Asia/Tokyo")
    env.write_text("SMTP_HOST=other.example\nIMAP_HOST=imap.example\n", encoding="utf-8")
    third = load_settings(env_file=str(env), database_url="sqlite:///three.db")
    assert (third.approvers, third.timezone) == (["U4"], "Asia/Tokyo")
    assert (third.smtp_host, third.imap_host) == ("other.example", "imap.example")

    monkeypatch.delenv("ARBOT_APPROVERS")
    env.write_text("", encoding="utf-8")
    fourth = load_settings(env_file=str(env), database_url="sqlite:///four.db")
    blank = load_settings(env_file=None)
    assert (fourth.approvers, fourth.smtp_host, fourth.imap_host) == (
        blank.approvers,
        blank.smtp_host,
        blank.imap_host,
    )
    assert fourth.smtp_host != "other.example" and fourth.approvers != ["U4"]


def test_a_reading_with_another_source_setting_is_not_given_anothers_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every setting of the environment's source counts in what its answer is kept by, one a
    later pydantic-settings adds too (here `_env_prefix_target`, which arbot does not pass)."""
    monkeypatch.setenv("X_DATABASE_URL", "sqlite:///x.db")
    prefixed = Settings(  # type: ignore[call-arg]
        _env_file=None, _env_prefix="X_", _env_prefix_target="all"
    )
    plain = Settings(_env_file=None, _env_prefix="X_")  # type: ignore[call-arg]

    assert prefixed.database_url == "sqlite:///x.db"
    assert plain.database_url == Settings(_env_file=None).database_url  # type: ignore[call-arg]


def test_a_pydantic_settings_without_the_field_names_reads_the_environment_every_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "_FIELD_NAMES", "_a_name_no_version_has")
    monkeypatch.setenv("ARBOT_TIMEZONE", "Europe/Paris")
    assert load_settings(env_file=None, database_url="sqlite:///a.db").timezone == "Europe/Paris"
    monkeypatch.setenv("ARBOT_TIMEZONE", "Asia/Tokyo")
    assert load_settings(env_file=None, database_url="sqlite:///b.db").timezone == "Asia/Tokyo"
