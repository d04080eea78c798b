"""HTTP webhooks: Stripe payments, inbound email, Twilio texts and delivery reports, and one-click
unsubscribe. Each endpoint verifies the request, parses it, calls one function of bot/ and answers;
the flows behind them store the change in one transaction and only then tell Slack and Stripe."""

from __future__ import annotations

from starlette.routing import Route

from bot.core.runtime import Runtime
from bot.escalations.notes import SlackOut
from bot.replies.triage import RuleClassifier
from handlers.webhooks import email, stripe, twilio, unsubscribe
from handlers.webhooks.email_services import mail_service_routes
from integrations.wiring import classifier_for, links_for, slack_for, stripe_payments_for


def webhook_routes(runtime: Runtime, slack: SlackOut | None = None) -> list[Route]:
    """The routes, built once per runtime (a workspace has its own, under /w/<team id>/)."""
    settings = runtime.settings
    slack = slack or slack_for(settings)
    classifier = classifier_for(settings, RuleClassifier())
    return [
        Route(
            "/webhooks/stripe",
            stripe.endpoint(runtime, slack, links_for(settings), stripe_payments_for(settings)),
            methods=["POST"],
        ),
        Route("/webhooks/email", email.endpoint(runtime, slack, classifier), methods=["POST"]),
        *mail_service_routes(runtime, slack, classifier),
        Route(
            "/webhooks/twilio/sms",
            twilio.sms_endpoint(runtime, slack, classifier),
            methods=["POST"],
        ),
        Route("/webhooks/twilio/status", twilio.status_endpoint(runtime), methods=["POST"]),
        *unsubscribe_routes(runtime),
    ]


def uninstalled_routes(runtime: Runtime) -> list[Route]:
    """What a workspace that uninstalled arbot still answers (handlers.workspace_routing): its
    unsubscribe links, and the texts and emails that opt out (bot/replies/uninstalled.py), with no
    Slack to tell."""
    classifier = classifier_for(runtime.settings, RuleClassifier())
    return [
        Route(
            "/webhooks/email",
            email.endpoint(runtime, None, classifier, uninstalled=True),
            methods=["POST"],
        ),
        *mail_service_routes(runtime, None, classifier, uninstalled=True),
        Route(
            "/webhooks/twilio/sms",
            twilio.opt_out_sms_endpoint(runtime, classifier),
            methods=["POST"],
        ),
        *unsubscribe_routes(runtime),
    ]


def unsubscribe_routes(runtime: Runtime) -> list[Route]:
    """The one-click unsubscribe link's page and POST."""
    return [
        Route("/unsubscribe/{token}", unsubscribe.page_endpoint(runtime), methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe.endpoint(runtime), methods=["POST"]),
    ]
