"""Settings from the environment and `.env`. Names are DESIGN's public contract; see the README."""

from __future__ import annotations

import copy
import os
from datetime import datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bot.core.clock import Clock, FixedClock, SystemClock, zone_named
from bot.core.errors import UserError
from bot.core.vocabulary import RESOLUTIONS, TIERS


def _env(name: str) -> AliasChoices:
    # Only the documented variable: a stray NOW or TIMEZONE in the environment must not count.
    return AliasChoices(name)


MAILBOX_PRESETS: dict[str, dict[str, Any]] = {
    "gmail": {
        "smtp_host": "smtp.gmail.com",
        "smtp_port": 587,
        "smtp_starttls": True,
        "imap_host": "imap.gmail.com",
        "imap_port": 993,
    },
    "microsoft365": {
        "smtp_host": "smtp.office365.com",
        "smtp_port": 587,
        "smtp_starttls": True,
        "imap_host": "outlook.office365.com",
        "imap_port": 993,
    },
}


TWILIO_DEFAULT_URL = "https://api.twilio.com"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field("sqlite:///arbot.db", validation_alias=_env("DATABASE_URL"))

    # Slack
    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_SIGNING_SECRET")
    )
    slack_app_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=_env("SLACK_API_URL"))
    finance_channel: str | None = Field(None, validation_alias=_env("ARBOT_FINANCE_CHANNEL"))
    escalation_channel: str | None = Field(None, validation_alias=_env("ARBOT_ESCALATION_CHANNEL"))
    approvers: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("ARBOT_APPROVERS")
    )
    # Several workspaces: the Slack app's OAuth credentials (/slack/install), and which
    # installed workspace a command-line run works on (unset: the main one).
    slack_client_id: str | None = Field(None, validation_alias=_env("SLACK_CLIENT_ID"))
    slack_client_secret: SecretStr | None = Field(
        None, validation_alias=_env("SLACK_CLIENT_SECRET")
    )
    slack_authorize_url: str = Field(
        "https://slack.com/oauth/v2/authorize", validation_alias=_env("SLACK_AUTHORIZE_URL")
    )
    workspace: str | None = Field(None, validation_alias=_env("ARBOT_WORKSPACE"))

    # The business
    timezone: str = Field("UTC", validation_alias=_env("ARBOT_TIMEZONE"))
    public_url: str | None = Field(None, validation_alias=_env("ARBOT_PUBLIC_URL"))
    now: datetime | None = Field(None, validation_alias=_env("ARBOT_NOW"))

    # Planning: who gets what, when
    business_name: str = Field("Accounts Receivable", validation_alias=_env("ARBOT_BUSINESS_NAME"))
    phone_region: str = Field("US", validation_alias=_env("ARBOT_PHONE_REGION"))
    send_window: str = Field("09:00-17:00", validation_alias=_env("ARBOT_SEND_WINDOW"))
    send_days: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"],
        validation_alias=_env("ARBOT_SEND_DAYS"),
    )
    frequency_cap_days: int = Field(
        3, ge=1, le=30, validation_alias=_env("ARBOT_FREQUENCY_CAP_DAYS")
    )
    # After a person approves a reminder it waits at least this long before it may be sent, so
    # that Undo can take the approval back.
    undo_seconds: int = Field(300, ge=0, le=86400, validation_alias=_env("ARBOT_UNDO_SECONDS"))
    write_off: Annotated[dict[str, Decimal], NoDecode] = Field(
        default_factory=dict, validation_alias=_env("ARBOT_WRITE_OFF")
    )
    resolved_when: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["payment_plan", "promise"],
        validation_alias=_env("ARBOT_RESOLVED_WHEN"),
    )
    owner_emails: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, validation_alias=_env("ARBOT_OWNER_EMAILS")
    )
    escalation_routes: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, validation_alias=_env("ARBOT_ESCALATION_ROUTES")
    )
    pilot_tiers: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("ARBOT_PILOT_TIERS")
    )
    pilot_tags: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("ARBOT_PILOT_TAGS")
    )
    pilot_customers: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("ARBOT_PILOT_CUSTOMERS")
    )
    pilot_max_invoices: int | None = Field(
        None, ge=1, validation_alias=_env("ARBOT_PILOT_MAX_INVOICES")
    )
    # A stable random share of the customers in the pilot's scope kept observe-only, to compare
    # against (bot.planning.control); 0 runs no holdout.
    control_share: Decimal = Field(
        Decimal(0),
        ge=0,
        le=Decimal("0.5"),
        decimal_places=4,
        validation_alias=_env("ARBOT_CONTROL_SHARE"),
    )

    # Email
    smtp_host: str | None = Field(None, validation_alias=_env("SMTP_HOST"))
    smtp_port: int = Field(587, validation_alias=_env("SMTP_PORT"))
    smtp_user: str | None = Field(None, validation_alias=_env("SMTP_USER"))
    smtp_password: SecretStr | None = Field(None, validation_alias=_env("SMTP_PASSWORD"))
    smtp_starttls: bool = Field(True, validation_alias=_env("SMTP_STARTTLS"))
    smtp_ca_file: str | None = Field(None, validation_alias=_env("SMTP_CA_FILE"))
    from_email: str | None = Field(None, validation_alias=_env("ARBOT_FROM_EMAIL"))
    # Messages the send worker hands over at once, each on a connection of its own (1: one at a
    # time on one connection; a killed worker leaves at most this many batches for a person).
    send_concurrency: int = Field(1, ge=1, le=16, validation_alias=_env("ARBOT_SEND_CONCURRENCY"))
    # Reminders a lane moves to `sending` in one commit before it sends them, their results then
    # committed with the next ones (a killed worker leaves at most this many a lane for a person).
    send_batch: int = Field(10, ge=1, le=100, validation_alias=_env("ARBOT_SEND_BATCH"))
    secret_key: SecretStr | None = Field(None, validation_alias=_env("ARBOT_SECRET_KEY"))
    inbound_email_secret: SecretStr | None = Field(
        None, validation_alias=_env("ARBOT_INBOUND_EMAIL_SECRET")
    )
    # The largest message POST /webhooks/email accepts; a larger one is refused with 413 as it
    # arrives, before the rest is read.
    inbound_email_max_bytes: int = Field(
        25 * 1024 * 1024,
        ge=64 * 1024,
        le=1024 * 1024 * 1024,
        validation_alias=_env("ARBOT_INBOUND_EMAIL_MAX_BYTES"),
    )
    # Inbound mail through a mail service, one path each (handlers/webhooks/email_services.py);
    # a path refuses everything until its credentials are set.
    mailgun_webhook_signing_key: SecretStr | None = Field(
        None, validation_alias=_env("MAILGUN_WEBHOOK_SIGNING_KEY")
    )
    sendgrid_inbound_user: str | None = Field(None, validation_alias=_env("SENDGRID_INBOUND_USER"))
    sendgrid_inbound_password: SecretStr | None = Field(
        None, validation_alias=_env("SENDGRID_INBOUND_PASSWORD")
    )
    postmark_inbound_user: str | None = Field(None, validation_alias=_env("POSTMARK_INBOUND_USER"))
    postmark_inbound_password: SecretStr | None = Field(
        None, validation_alias=_env("POSTMARK_INBOUND_PASSWORD")
    )
    # The SNS topics SES receipt rules publish to; a notification from any other is refused.
    ses_topic_arns: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("SES_TOPIC_ARNS")
    )
    # Where SNS signing certificates and subscription URLs may come from instead of
    # https://sns.<region>.amazonaws.com (tests point it at a local server).
    sns_api_url: str | None = Field(None, validation_alias=_env("SNS_API_URL"))
    # A message an SES receipt rule stored in S3 is read with these (s3:GetObject on the
    # bucket); unset, such a message is kept for a person. The region is the bucket's (default:
    # the SNS topic's region); S3_API_URL replaces https://<bucket>.s3.<region>.amazonaws.com
    # (path-style, or virtual-hosted when it contains {bucket}); for tests and S3-compatible stores.
    ses_s3_access_key_id: str | None = Field(None, validation_alias=_env("SES_S3_ACCESS_KEY_ID"))
    ses_s3_secret_access_key: SecretStr | None = Field(
        None, validation_alias=_env("SES_S3_SECRET_ACCESS_KEY")
    )
    ses_s3_session_token: SecretStr | None = Field(
        None, validation_alias=_env("SES_S3_SESSION_TOKEN")
    )
    ses_s3_region: str | None = Field(None, validation_alias=_env("SES_S3_REGION"))
    s3_api_url: str | None = Field(None, validation_alias=_env("S3_API_URL"))
    # While a notification is younger than this, an S3 read that failed for a passing reason
    # (5xx, timeout) answers SNS 503 so that SNS delivers it again (by default 3 more times,
    # 20 s apart); older, it is kept for a person. 0: keep it at once.
    ses_s3_retry_seconds: int = Field(
        30, ge=0, le=3600, validation_alias=_env("SES_S3_RETRY_SECONDS")
    )

    # SMS
    twilio_account_sid: str | None = Field(None, validation_alias=_env("TWILIO_ACCOUNT_SID"))
    twilio_auth_token: SecretStr | None = Field(None, validation_alias=_env("TWILIO_AUTH_TOKEN"))
    twilio_from: str | None = Field(None, validation_alias=_env("TWILIO_FROM"))
    twilio_api_url: str = Field(TWILIO_DEFAULT_URL, validation_alias=_env("TWILIO_API_URL"))

    # Payments
    stripe_api_key: SecretStr | None = Field(None, validation_alias=_env("STRIPE_API_KEY"))
    stripe_webhook_secret: SecretStr | None = Field(
        None, validation_alias=_env("STRIPE_WEBHOOK_SECRET")
    )
    stripe_api_base: str = Field("https://api.stripe.com", validation_alias=_env("STRIPE_API_BASE"))

    # Ledger and CRM sources: credentials and overridable base URLs
    quickbooks_client_id: str | None = Field(None, validation_alias=_env("QUICKBOOKS_CLIENT_ID"))
    quickbooks_client_secret: SecretStr | None = Field(
        None, validation_alias=_env("QUICKBOOKS_CLIENT_SECRET")
    )
    quickbooks_api_url: str = Field(
        "https://quickbooks.api.intuit.com", validation_alias=_env("QUICKBOOKS_API_URL")
    )
    quickbooks_authorize_url: str = Field(
        "https://appcenter.intuit.com/connect/oauth2",
        validation_alias=_env("QUICKBOOKS_AUTHORIZE_URL"),
    )
    quickbooks_token_url: str = Field(
        "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        validation_alias=_env("QUICKBOOKS_TOKEN_URL"),
    )
    xero_authorize_url: str = Field(
        "https://login.xero.com/identity/connect/authorize",
        validation_alias=_env("XERO_AUTHORIZE_URL"),
    )
    xero_token_url: str = Field(
        "https://identity.xero.com/connect/token", validation_alias=_env("XERO_TOKEN_URL")
    )
    sync_redirect_uri: str | None = Field(None, validation_alias=_env("ARBOT_OAUTH_REDIRECT_URI"))
    xero_client_id: str | None = Field(None, validation_alias=_env("XERO_CLIENT_ID"))
    xero_client_secret: SecretStr | None = Field(None, validation_alias=_env("XERO_CLIENT_SECRET"))
    xero_api_url: str = Field("https://api.xero.com", validation_alias=_env("XERO_API_URL"))
    freshbooks_client_id: str | None = Field(None, validation_alias=_env("FRESHBOOKS_CLIENT_ID"))
    freshbooks_client_secret: SecretStr | None = Field(
        None, validation_alias=_env("FRESHBOOKS_CLIENT_SECRET")
    )
    freshbooks_api_url: str = Field(
        "https://api.freshbooks.com", validation_alias=_env("FRESHBOOKS_API_URL")
    )
    hubspot_token: SecretStr | None = Field(None, validation_alias=_env("HUBSPOT_TOKEN"))
    hubspot_api_url: str = Field("https://api.hubapi.com", validation_alias=_env("HUBSPOT_API_URL"))
    pipedrive_token: SecretStr | None = Field(None, validation_alias=_env("PIPEDRIVE_TOKEN"))
    pipedrive_api_url: str = Field(
        "https://api.pipedrive.com", validation_alias=_env("PIPEDRIVE_API_URL")
    )

    # A mailbox preset fills in the SMTP and IMAP hosts and ports not set by hand
    mailbox: str | None = Field(None, validation_alias=_env("ARBOT_MAILBOX"))
    # Signing in to it with OAuth 2.0 (`arbot connect gmail|microsoft365`) instead of a password
    gmail_client_id: str | None = Field(None, validation_alias=_env("GMAIL_CLIENT_ID"))
    gmail_client_secret: SecretStr | None = Field(
        None, validation_alias=_env("GMAIL_CLIENT_SECRET")
    )
    gmail_authorize_url: str = Field(
        "https://accounts.google.com/o/oauth2/v2/auth",
        validation_alias=_env("GMAIL_AUTHORIZE_URL"),
    )
    gmail_token_url: str = Field(
        "https://oauth2.googleapis.com/token", validation_alias=_env("GMAIL_TOKEN_URL")
    )
    microsoft365_client_id: str | None = Field(
        None, validation_alias=_env("MICROSOFT365_CLIENT_ID")
    )
    microsoft365_client_secret: SecretStr | None = Field(
        None, validation_alias=_env("MICROSOFT365_CLIENT_SECRET")
    )
    # The directory (tenant) id or domain; "organizations" for any work account
    microsoft365_tenant: str = Field("organizations", validation_alias=_env("MICROSOFT365_TENANT"))
    # Default: https://login.microsoftonline.com/<tenant>/oauth2/v2.0/authorize and .../token
    microsoft365_authorize_url: str | None = Field(
        None, validation_alias=_env("MICROSOFT365_AUTHORIZE_URL")
    )
    microsoft365_token_url: str | None = Field(
        None, validation_alias=_env("MICROSOFT365_TOKEN_URL")
    )

    # Inbound mail for teams without a webhook (`arbot poll-inbox`)
    imap_host: str | None = Field(None, validation_alias=_env("IMAP_HOST"))
    imap_port: int = Field(993, validation_alias=_env("IMAP_PORT"))
    imap_user: str | None = Field(None, validation_alias=_env("IMAP_USER"))
    imap_password: SecretStr | None = Field(None, validation_alias=_env("IMAP_PASSWORD"))
    imap_folder: str = Field("INBOX", validation_alias=_env("IMAP_FOLDER"))
    imap_ca_file: str | None = Field(None, validation_alias=_env("IMAP_CA_FILE"))

    # Running by itself (`arbot serve`): the scheduled jobs
    morning_time: time = Field(time(8, 0), validation_alias=_env("ARBOT_MORNING_TIME"))
    holidays_country: str | None = Field(None, validation_alias=_env("ARBOT_HOLIDAYS"))
    sync_every_minutes: int = Field(
        60, ge=5, le=24 * 60, validation_alias=_env("ARBOT_SYNC_EVERY_MINUTES")
    )
    weekly_review_day: str = Field("mon", validation_alias=_env("ARBOT_WEEKLY_REVIEW_DAY"))
    scheduler_enabled: bool = Field(True, validation_alias=_env("ARBOT_SCHEDULER"))
    log_json: bool = Field(False, validation_alias=_env("ARBOT_LOG_JSON"))
    # Whoever sends `Authorization: Bearer <this>` to GET /healthz reads the whole health
    # document; anyone else reads only "ok" or "unhealthy".
    health_token: SecretStr | None = Field(None, validation_alias=_env("ARBOT_HEALTH_TOKEN"))

    # What happens after a reply
    promise_grace_days: int = Field(
        2, ge=0, le=30, validation_alias=_env("ARBOT_PROMISE_GRACE_DAYS")
    )
    instalment_grace_days: int = Field(
        3, ge=0, le=30, validation_alias=_env("ARBOT_INSTALMENT_GRACE_DAYS")
    )  # days after an instalment's date it still counts as on time
    unclaimed_after_days: float = Field(
        1, gt=0, le=30, validation_alias=_env("ARBOT_UNCLAIMED_AFTER_DAYS")
    )  # business days (ARBOT_SEND_DAYS) an escalation may wait unclaimed before it is raised
    triage_min_confidence: float = Field(
        0.6, ge=0, le=1, validation_alias=_env("ARBOT_TRIAGE_MIN_CONFIDENCE")
    )

    # CRM context (HubSpot, Pipedrive), merged by `arbot sync`
    crm_match_by: str = Field("domain", validation_alias=_env("ARBOT_CRM_MATCH_BY"))
    crm_tier_property: str = Field("arbot_tier", validation_alias=_env("ARBOT_CRM_TIER_PROPERTY"))
    crm_tags_property: str | None = Field(None, validation_alias=_env("ARBOT_CRM_TAGS_PROPERTY"))
    crm_id_property: str = Field(
        "arbot_customer_id", validation_alias=_env("ARBOT_CRM_ID_PROPERTY")
    )
    crm_log_activity: bool = Field(False, validation_alias=_env("ARBOT_CRM_LOG_ACTIVITY"))
    freshbooks_authorize_url: str = Field(
        "https://auth.freshbooks.com/oauth/authorize",
        validation_alias=_env("FRESHBOOKS_AUTHORIZE_URL"),
    )
    freshbooks_token_url: str = Field(
        "https://api.freshbooks.com/auth/oauth/token", validation_alias=_env("FRESHBOOKS_TOKEN_URL")
    )

    # Copies of invoices (PDF) in reminders: every remind step attaches them when on (a step's
    # own attach_invoice_pdf wins); a CSV ledger's copies come from its pdf_url column or from
    # this folder (one <invoice number>.pdf a file); an email carrying more than this is refused.
    attach_invoice_pdf: bool = Field(False, validation_alias=_env("ARBOT_ATTACH_INVOICE_PDF"))
    invoice_pdf_dir: str | None = Field(None, validation_alias=_env("ARBOT_INVOICE_PDF_DIR"))
    # A pdf_url reaches hosts on the public internet only; these addresses or networks (the
    # business's own file server) too. Cloud metadata services never.
    allow_private_pdf_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("ARBOT_ALLOW_PRIVATE_PDF_HOSTS")
    )
    max_message_mb: float = Field(10.0, gt=0, le=100, validation_alias=_env("ARBOT_MAX_MESSAGE_MB"))

    # Optional LLM (off unless LLM_BASE_URL is set)
    llm_base_url: str | None = Field(None, validation_alias=_env("LLM_BASE_URL"))
    llm_model: str | None = Field(None, validation_alias=_env("LLM_MODEL"))
    llm_api_key: SecretStr | None = Field(None, validation_alias=_env("LLM_API_KEY"))
    llm_drafting: bool = Field(False, validation_alias=_env("ARBOT_LLM_DRAFTING"))

    @field_validator(
        "approvers",
        "send_days",
        "pilot_tiers",
        "pilot_tags",
        "pilot_customers",
        "resolved_when",
        "ses_topic_arns",
        "allow_private_pdf_hosts",
        mode="before",
    )
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allow_private_pdf_hosts")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        networks = []
        for entry in value:
            try:
                networks.append(str(ipaddress.ip_network(entry, strict=False)))
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (such as 10.0.0.5 or 10.1.0.0/16)"
                ) from None
        return networks

    @field_validator("crm_match_by")
    @classmethod
    def _match_by(cls, value: str) -> str:
        if value not in ("domain", "external_id", "name"):
            raise ValueError(f"{value!r}: use domain, external_id or name")
        return value

    @field_validator("write_off", "escalation_routes", "owner_emails", mode="before")
    @classmethod
    def _comma_pairs(cls, value: object) -> object:
        """`USD=5.00,EUR=5.00` or `strategic=S0GROUP,standard=U0FIN`."""
        if not isinstance(value, str):
            return value
        pairs = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            key, sep, item = part.partition("=")
            if not sep or not key.strip() or not item.strip():
                raise ValueError(f"{part!r} is not KEY=VALUE")
            pairs[key.strip()] = item.strip()
        return pairs

    @field_validator("send_days")
    @classmethod
    def _known_days(cls, days: list[str]) -> list[str]:
        lowered = [d.lower()[:3] for d in days]
        unknown = [d for d in lowered if d not in WEEKDAYS]
        if unknown or not lowered:
            raise ValueError("use day names such as mon,tue,wed,thu,fri")
        return lowered

    @field_validator("send_window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_window(value)
        return value

    @field_validator("morning_time")
    @classmethod
    def _wall_clock_morning(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError(
                f"{value.isoformat()} names a timezone: give the time without a timezone, "
                "such as 08:00 (it is read in ARBOT_TIMEZONE)"
            )
        return value

    @field_validator("phone_region")
    @classmethod
    def _region(cls, value: str) -> str:
        region = value.upper()
        if region == "US":
            return region  # the default: checked without loading phonenumbers at every start
        import phonenumbers

        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a country code such as US, GB or DE")
        return region

    @field_validator("resolved_when")
    @classmethod
    def _resolutions(cls, values: list[str]) -> list[str]:
        unknown = [v for v in values if v not in RESOLUTIONS]
        if unknown:
            raise ValueError(f"unknown {', '.join(unknown)}; use payment_plan and/or promise")
        return values

    @field_validator("pilot_tiers")
    @classmethod
    def _tiers(cls, tiers: list[str]) -> list[str]:
        unknown = [t for t in tiers if t not in TIERS]
        if unknown:
            raise ValueError(f"unknown tier {', '.join(unknown)}")
        return tiers

    def window(self) -> tuple[time, time]:
        return parse_window(self.send_window)

    def weekday_numbers(self) -> frozenset[int]:
        return frozenset(WEEKDAYS.index(day) for day in self.send_days)

    @field_validator("mailbox")
    @classmethod
    def _mailbox(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in MAILBOX_PRESETS:
            raise ValueError(f"{value!r}: use one of {', '.join(MAILBOX_PRESETS)}")
        return value.lower() if value else None

    @model_validator(mode="after")
    def _apply_mailbox(self) -> Settings:
        """Gmail / Google Workspace or Microsoft 365: the hosts and ports that provider uses, for
        whatever was not set by hand (an app password goes in SMTP_PASSWORD / IMAP_PASSWORD)."""
        if self.mailbox is None:
            return self
        preset = MAILBOX_PRESETS[self.mailbox]
        for name, value in preset.items():
            if name not in self.model_fields_set:
                setattr(self, name, value)
        return self

    @field_validator("twilio_api_url", mode="before")
    @classmethod
    def _twilio_default(cls, value: object) -> object:
        """Empty (`TWILIO_API_URL=`, as a .env may leave it): Twilio's own URL."""
        if isinstance(value, str) and not value.strip():
            return TWILIO_DEFAULT_URL
        return value

    @field_validator("twilio_api_url")
    @classmethod
    def _twilio_url(cls, value: str) -> str:
        """An http(s) URL with a host (and a port that can be): a typo such as a missing scheme
        would otherwise make every text fail as it is sent."""
        try:
            split = urlsplit(value)
            usable = split.scheme in ("http", "https") and bool(split.hostname)
            _ = split.port  # raises ValueError for a port out of range
        except ValueError:
            usable = False
        if not usable:
            raise ValueError(
                f"{value!r} is not a URL arbot can send to: give it with its scheme and host, "
                "such as https://api.twilio.com"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zone_named(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA timezone such as America/Chicago") from None
        return value

    @field_validator("now")
    @classmethod
    def _aware_now(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("needs a timezone, e.g. 2026-03-16T09:00:00Z")
        return value

    def clock(self) -> Clock:
        """ARBOT_NOW fixes the clock (demos, simulations, acceptance tests); otherwise real time."""
        return FixedClock(self.now) if self.now is not None else SystemClock()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """pydantic-settings' own sources, in its own order, with what the environment and the
        `.env` file give remembered (see `_Remembered`)."""
        return (
            init_settings,
            _Remembered(settings_cls, env_settings),
            _Remembered(settings_cls, dotenv_settings),
            file_secret_settings,
        )


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Remembered(PydanticBaseSettingsSource):
    """The environment's or the `.env` file's source, its answer remembered by what it read.

    Such a source weighs each of the hundred-odd fields' types at every reading (4 of the 5 ms a
    reading takes), and its answer depends only on the variables it holds: the environment's
    source reads a field from that field's own variable names alone (no prefix, no nested
    delimiter), and the `.env` file's source keeps every variable the file gives. So the answer
    is kept by those values, and each reading gets a copy of its own."""

    def __init__(self, settings_cls: type[BaseSettings], source: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        self.source = source

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.source.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        if (
            not isinstance(self.source, EnvSettingsSource)
            or self.source.env_nested_delimiter  # it may read variables no field is named by
            or not hasattr(self.source, _FIELD_NAMES)  # another pydantic-settings
        ):
            return self.source()  # read as it is, every time
        key = _source_key(self.settings_cls, self.source)
        answer = _ANSWERS.get(key)
        if answer is None:
            answer = self.source()
            if len(_ANSWERS) >= _READ_LIMIT:
                _ANSWERS.clear()
            _ANSWERS[key] = copy.deepcopy(answer)
            return answer
        return copy.deepcopy(answer)


def _source_key(settings_cls: type[BaseSettings], source: EnvSettingsSource) -> tuple[object, ...]:
    """What the answer of `source` depends on: for the `.env` file's, all its variables (it keeps
    those no field names, for pydantic to ignore); for the environment's, the fields' own."""
    held = source.env_vars
    if isinstance(source, DotEnvSettingsSource):
        read: tuple[object, ...] = tuple(sorted(held.items()))  # names differ: no None compared
    else:
        read = tuple(held.get(name) for name in _variable_names(settings_cls, source))
    return (*_kind(settings_cls, source), read)


def _kind(settings_cls: type[BaseSettings], source: EnvSettingsSource) -> tuple[object, ...]:
    """How `source` reads: what else its answer depends on (the same for every reading unless
    one is given `_case_sensitive`, `_env_prefix` and the like). Every setting of the source is
    taken, so that one added by a later pydantic-settings counts too; only the variables it
    holds (compared apart) and its own working state are left out."""
    return (
        settings_cls,
        type(source),
        *(
            (name, repr(value))
            for name, value in sorted(vars(source).items())
            if not name.startswith("_") and name != "env_vars"
        ),
    )


def _variable_names(settings_cls: type[BaseSettings], source: EnvSettingsSource) -> list[str]:
    """Every variable name, as `source` spells it, that one of the fields is read from (the
    same for every source of a kind and a case: worked out once)."""
    kind = _kind(settings_cls, source)
    names = _NAMES.get(kind)
    if names is None:
        names = _NAMES[kind] = [
            name
            for field_name, field in settings_cls.model_fields.items()
            for _, name, _ in getattr(source, _FIELD_NAMES)(field, field_name)
        ]
    return names


_NAMES: dict[tuple[object, ...], list[str]] = {}
# pydantic-settings' own (not its API) method giving a field's variable names: a version without
# it has the environment read every time, as without this cache.
_FIELD_NAMES = "_extract_field_info"


# What the environment's and the `.env` file's sources answered, by what they read.
_ANSWERS: dict[tuple[object, ...], dict[str, Any]] = {}


def parse_window(text: str) -> tuple[time, time]:
    """`09:00-17:00` -> (09:00, 17:00); the end must come after the start, and neither names a
    timezone (the window is wall-clock time in each contact's zone)."""
    start_text, sep, end_text = text.partition("-")
    try:
        start, end = time.fromisoformat(start_text.strip()), time.fromisoformat(end_text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a window such as 09:00-17:00") from None
    if start.tzinfo is not None or end.tzinfo is not None:
        raise ValueError(
            f"{text!r} names a timezone: give the window without a timezone, such as "
            "09:00-17:00 (it is read in each contact's own timezone)"
        )
    if not sep or end <= start:
        raise ValueError(f"{text!r} is not a window such as 09:00-17:00")
    return start, end


def load_settings(env_file: str | None = ".env", **overrides: object) -> Settings:
    """Read settings, turning a bad value into a message that names the variable to fix.

    Overrides are given by field name (`database_url=...`) and win over the environment.
    """
    unknown = [name for name in overrides if name not in Settings.model_fields]
    if unknown:
        raise TypeError(f"no such setting: {', '.join(unknown)}")
    by_variable: dict[str, Any] = {_env_name(n): v for n, v in overrides.items()}
    key = _read_key(env_file, overrides)
    known = _READ.get(key) if key is not None else None
    if known is not None:
        return known.model_copy(deep=True)
    try:
        read = Settings(_env_file=env_file, **by_variable)
    except ValidationError as exc:
        raise UserError("bad setting: " + _problems(exc)) from None
    except UnicodeDecodeError:
        if env_file is None:  # not the file's text: nothing a user fixes by saving a file
            raise
        raise UserError(_not_utf8(Path(env_file).resolve())) from None
    if key is not None:
        if len(_READ) >= _READ_LIMIT:
            _READ.clear()
        _READ[key] = read.model_copy(deep=True)
    return read


# Settings read before, by everything they were read from: reading them takes several
# milliseconds (pydantic-settings weighs every field's type against the environment and the
# file), and a process that reads them again and again (the test suite, each command run
# in-process) gets the same answer from the same inputs. Each caller gets a copy of its own.
_READ: dict[tuple[object, ...], Settings] = {}
_READ_LIMIT = 32
_PLAIN = (str, int, float, bool, Decimal, Path, type(None))


def _read_key(env_file: str | None, overrides: dict[str, object]) -> tuple[object, ...] | None:
    """What a reading of the settings depends on, or None when a given value cannot be compared
    (a secret, a list) and the settings are read afresh."""
    if not all(isinstance(value, _PLAIN) for value in overrides.values()):
        return None
    contents = None
    if env_file is not None:
        try:
            contents = Path(env_file).read_bytes()
        except OSError:
            contents = None
    return (
        os.getcwd(),
        env_file,
        contents,
        tuple(sorted(os.environ.items())),
        # by type and repr: Decimal("0.10") equals Decimal("0.1") but reads differently
        tuple(
            sorted((name, type(value).__name__, repr(value)) for name, value in overrides.items())
        ),
    )


def _not_utf8(path: Path) -> str:
    """What to say of a settings file that is not UTF-8 (Windows Notepad's "Unicode" is UTF-16)."""
    with path.open("rb") as handle:
        head = handle.read(2)
    saved = "is saved as UTF-16" if head in (b"\xff\xfe", b"\xfe\xff") else "is not UTF-8 text"
    return f"the settings file {path} {saved}: save it as UTF-8 and run the command again"


class _GivenOnly(Settings):
    """Settings from the values given, never the environment or `.env`."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def given_settings(values: dict[str, Any], where: str) -> Settings:
    """Settings from exactly these values (by field name), the rest at their defaults: what an
    installed workspace runs with (bot.workspaces.registry). A bad value names its variable and `where`."""
    unknown = [name for name in values if name not in Settings.model_fields]
    if unknown:
        raise TypeError(f"no such setting: {', '.join(unknown)}")
    try:
        return _GivenOnly(**{_env_name(n): v for n, v in values.items()})
    except ValidationError as exc:
        raise UserError(f"bad setting in {where}: " + _problems(exc)) from None


def field_for_variable(name: str) -> str | None:
    """`SMTP_HOST` -> `smtp_host`; None when no setting has that variable name."""
    for field in Settings.model_fields:
        if _env_name(field) == name.upper():
            return field
    return None


def _problems(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        problems.append(f"{_env_name(field)}: {error['msg']}")
    return "; ".join(problems)


def _env_name(field: str) -> str:
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return field.upper()
