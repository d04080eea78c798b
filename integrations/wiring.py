"""The one place adapters are built from settings: Slack, the email and SMS senders, Stripe payment
links, the LLM drafter and reply classifier, and the accounting sources and CRMs that sync reads. Entry points (handlers/, scheduler/) call these and hand what they get to
`bot/`, which knows only the ports in integrations/base/.

Each builder imports its adapter when it is called: a command that sends nothing never loads an
SDK, and `arbot --help` loads none at all."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.core.errors import UserError
from bot.core.settings import Settings
from integrations.tls import http_client

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.core.runtime import Runtime
    from integrations.base.documents import CopyFetchers
    from integrations.base.inbound import Classifier, FallbackClassifier
    from integrations.base.ledger import CrmSource, TokenStore
    from integrations.base.outbound import Sender
    from integrations.base.payments import PaymentLinks, StripePayments
    from integrations.llm_draft import LlmDrafter
    from integrations.mail_oauth import MailboxAccess
    from integrations.oauth import Provider
    from integrations.slack_chat import SlackChat


def slack_client_for(settings: Settings) -> WebClient | None:
    """slack_sdk's client on SLACK_BOT_TOKEN and SLACK_API_URL; None without a token."""
    if not settings.slack_bot_token:
        return None
    from bot.core.slack_access import SlackAccess
    from integrations.slack_chat import web_client

    token = settings.slack_bot_token.get_secret_value()
    access = SlackAccess(settings.database_url, token)
    return web_client(token, settings.slack_api_url, access.refusal)


def slack_for(settings: Settings) -> SlackChat | None:
    """The Slack side for work outside a Slack request (the CLI, jobs, webhooks); None without a
    token."""
    client = slack_client_for(settings)
    if client is None:
        return None
    from integrations.slack_chat import SlackChat

    return SlackChat(client)


def senders_for(
    settings: Settings, outbox: Path | None = None, runtime: Runtime | None = None
) -> dict[str, Sender]:
    """Email by SMTP and texts by Twilio as configured, or both into a folder of files. With
    `runtime`, SMTP signs in with the mailbox's OAuth grant when one is connected; a grant the
    provider refused leaves email out (the reminders wait as approved; `mailbox_refusal` says
    why), so each run does not stop and tell Slack again."""
    from integrations.email_out import FileSender, SmtpSender

    if outbox is not None:
        files = FileSender(outbox)
        return {"email": files, "sms": files}
    oauth = mailbox_access_for(settings, runtime) if runtime is not None else None
    if oauth is not None and oauth.store.refusal(oauth.provider.name):
        return _sms_sender(settings)
    if not settings.smtp_host:
        raise UserError(
            "set SMTP_HOST (and SMTP_PORT, SMTP_USER, SMTP_PASSWORD) to send email, "
            "or use --outbox DIR to write the messages to files"
        )
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    senders: dict[str, Sender] = {
        "email": SmtpSender(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_user,
            password,
            settings.smtp_starttls,
            ca_file=settings.smtp_ca_file,
            oauth=oauth,
        ),
        **_sms_sender(settings),
    }
    return senders


def _sms_sender(settings: Settings) -> dict[str, Sender]:
    sid, token, sender = (
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        settings.twilio_from,
    )
    if sid and token and sender:
        from integrations.twilio_sms import TwilioSender

        public = settings.public_url
        callback = public.rstrip("/") + "/webhooks/twilio/status" if public else None
        return {
            "sms": TwilioSender(
                settings.twilio_api_url, sid, token.get_secret_value(), sender, callback
            )
        }
    return {}


# --- The mailbox's OAuth sign-in (Gmail, Microsoft 365) ----------------------------------------


def mailbox_provider_for(settings: Settings, name: str) -> Provider:
    """The OAuth provider of a mailbox, from GMAIL_* or MICROSOFT365_* settings."""
    from integrations.mail_oauth import MAILBOXES, gmail_provider, microsoft365_provider

    if name not in MAILBOXES:
        raise UserError(f"unknown mailbox {name!r}: choose one of {', '.join(MAILBOXES)}")
    client_id = getattr(settings, f"{name}_client_id")
    secret = getattr(settings, f"{name}_client_secret")
    if not (client_id and secret):
        prefix = name.upper()
        raise UserError(
            f"set {prefix}_CLIENT_ID and {prefix}_CLIENT_SECRET first (the OAuth app registered "
            "for arbot; see the README)"
        )
    if name == "gmail":
        return gmail_provider(
            client_id,
            secret.get_secret_value(),
            settings.gmail_authorize_url,
            settings.gmail_token_url,
        )
    return microsoft365_provider(
        client_id,
        secret.get_secret_value(),
        settings.microsoft365_tenant,
        settings.microsoft365_authorize_url,
        settings.microsoft365_token_url,
    )


def mailbox_address(settings: Settings) -> str:
    """The mailbox the grant is for, sending and reading alike: SMTP_USER, else ARBOT_FROM_EMAIL."""
    address = settings.smtp_user or settings.from_email
    if address is None:
        raise UserError(
            "set SMTP_USER (or ARBOT_FROM_EMAIL) to the mailbox address arbot signs in as"
        )
    return address


def mailbox_access_for(settings: Settings, runtime: Runtime) -> MailboxAccess | None:
    """The OAuth sign-in of ARBOT_MAILBOX's mailbox when `arbot connect` stored a grant for it;
    None otherwise (SMTP_PASSWORD / IMAP_PASSWORD then, e.g. an app password)."""
    if settings.mailbox is None:
        return None
    from integrations.mail_oauth import MailboxAccess
    from integrations.mailbox_grants import MailboxGrants

    grants = MailboxGrants(runtime)
    if not grants.connected(settings.mailbox):
        return None
    return MailboxAccess(
        mailbox_provider_for(settings, settings.mailbox),
        mailbox_address(settings),
        grants,
        runtime.clock.now,
    )


def mailbox_refusal(settings: Settings, runtime: Runtime) -> str | None:
    """Why email waits: the provider refused the mailbox's grant (and what to run), or None."""
    oauth = mailbox_access_for(settings, runtime)
    return oauth.store.refusal(oauth.provider.name) if oauth is not None else None


def links_for(settings: Settings) -> PaymentLinks | None:
    """Stripe payment links when STRIPE_API_KEY is set; otherwise none."""
    if not settings.stripe_api_key:
        return None
    from integrations.base.payments import books_of
    from integrations.stripe_links import StripeLinks

    return StripeLinks(
        settings.stripe_api_key.get_secret_value(),
        settings.stripe_api_base,
        books_of(settings.workspace),
    )


def stripe_payments_for(settings: Settings) -> StripePayments | None:
    """What Stripe holds on a payment (is it one of arbot's links'?), when STRIPE_API_KEY is set;
    otherwise none."""
    if not settings.stripe_api_key:
        return None
    from integrations.stripe_payments import StripePaymentReader

    return StripePaymentReader(settings.stripe_api_key.get_secret_value(), settings.stripe_api_base)


def classifier_for(settings: Settings, rules: FallbackClassifier) -> Classifier:
    """What reads a customer's reply: the LLM (LLM_BASE_URL, LLM_MODEL), falling back to `rules`,
    or the rules alone. The rules are the core's (bot.replies.triage.RuleClassifier), handed in."""
    from integrations.llm import classifier_from

    return classifier_from(settings, rules)


def drafter_for(settings: Settings) -> LlmDrafter | None:
    """The LLM that polishes drafts when ARBOT_LLM_DRAFTING is on with LLM_BASE_URL and LLM_MODEL;
    the caller closes it."""
    if not (settings.llm_drafting and settings.llm_base_url and settings.llm_model):
        return None
    from integrations.llm_draft import LlmDrafter

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return LlmDrafter(settings.llm_base_url, settings.llm_model, key)


# --- Accounting sources and CRMs -----------------------------------------------------------

SOURCES = ("quickbooks", "xero", "freshbooks")


def provider_for(settings: Settings, name: str) -> Provider:
    """The OAuth provider of a source, from its settings (`<SOURCE>_CLIENT_ID`, ...)."""
    from integrations.oauth import freshbooks_provider, quickbooks_provider, xero_provider

    providers: dict[str, Callable[[str, str, str, str], Provider]] = {
        "quickbooks": quickbooks_provider,
        "xero": xero_provider,
        "freshbooks": freshbooks_provider,
    }
    make = providers.get(name)
    if make is None:
        raise UserError(f"unknown source {name!r}: choose one of {', '.join(SOURCES)}")
    client_id = getattr(settings, f"{name}_client_id")
    secret = getattr(settings, f"{name}_client_secret")
    if not (client_id and secret):
        prefix = name.upper()
        raise UserError(f"set {prefix}_CLIENT_ID and {prefix}_CLIENT_SECRET first")
    return make(
        client_id,
        secret.get_secret_value(),
        getattr(settings, f"{name}_authorize_url"),
        getattr(settings, f"{name}_token_url"),
    )


def ledger_source_opener(
    settings: Settings,
) -> Callable[[str, str, TokenStore, Callable[[], datetime]], AbstractContextManager[Any]]:
    """Opens a connected accounting source by name and tenant, on an OAuth client that keeps its
    tokens in `tokens`; the client is closed when the source is."""

    @contextmanager
    def open_source(
        name: str, tenant_id: str, tokens: TokenStore, now: Callable[[], datetime]
    ) -> Iterator[Any]:
        from integrations.freshbooks import FreshBooksSource
        from integrations.oauth_client import OAuthClient
        from integrations.quickbooks import QuickBooksSource
        from integrations.xero import XeroSource

        client = OAuthClient(provider_for(settings, name), tokens, now)
        region = settings.phone_region
        try:
            if name == "quickbooks":
                yield QuickBooksSource(
                    client, tenant_id, api_url=settings.quickbooks_api_url, phone_region=region
                )
            elif name == "freshbooks":
                yield FreshBooksSource(
                    client, tenant_id, api_url=settings.freshbooks_api_url, phone_region=region
                )
            else:
                yield XeroSource(
                    client, tenant_id, api_url=settings.xero_api_url, phone_region=region
                )
        finally:
            client.close()

    return open_source


def copy_fetchers_for(settings: Settings) -> CopyFetchers:
    """Where copies of invoices come from: the connected accounting sources, opened as sync
    opens them, and a CSV ledger's pdf_url or ARBOT_INVOICE_PDF_DIR."""
    from integrations.base.documents import CopyFetchers
    from integrations.invoice_files import InvoiceFiles

    folder = Path(settings.invoice_pdf_dir) if settings.invoice_pdf_dir else None
    files = InvoiceFiles(folder, allow_private_hosts=settings.allow_private_pdf_hosts)
    return CopyFetchers(ledger_source_opener(settings), files)


def crm_openers(settings: Settings) -> dict[str, Callable[[], AbstractContextManager[CrmSource]]]:
    """The CRMs with a token set, each opened on an HTTP client of its own."""
    common: dict[str, Any] = {
        "tier_property": settings.crm_tier_property,
        "tags_property": settings.crm_tags_property,
        "id_property": settings.crm_id_property,
        "phone_region": settings.phone_region,
    }
    found: dict[str, Callable[[], AbstractContextManager[CrmSource]]] = {}
    if settings.hubspot_token is not None:
        token, url = settings.hubspot_token.get_secret_value(), settings.hubspot_api_url

        @contextmanager
        def hubspot() -> Iterator[CrmSource]:

            from integrations.hubspot import HubSpotSource

            with http_client(timeout=30) as http:
                yield HubSpotSource(http, token, api_url=url, **common)

        found["hubspot"] = hubspot
    if settings.pipedrive_token is not None:
        key, base = settings.pipedrive_token.get_secret_value(), settings.pipedrive_api_url

        @contextmanager
        def pipedrive() -> Iterator[CrmSource]:

            from integrations.pipedrive import PipedriveSource

            with http_client(timeout=30) as http:
                yield PipedriveSource(http, key, api_url=base, **common)

        found["pipedrive"] = pipedrive
    return found
