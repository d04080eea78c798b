"""A Stripe event naming a payment arbot never recorded is told to the finance channel durably:
owed in the transaction that stores the event, posted by the webhook, and, when Slack refused
it then, by a later sweep, exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.core.clock import FixedClock
from bot.core.runtime import Runtime
from bot.escalations.sweeps import sweep
from bot.payments.flows import receive_stripe_event
from bot.payments.stripe_events import TELL_AFTER
from integrations.base.payments import StripeEventIn
from integrations.slack_chat import SlackChat, web_client
from tests.support import stripe_requests as sr


def _refund_of_a_payment_never_recorded(rt: Runtime) -> StripeEventIn:
    return StripeEventIn(
        id="evt_never",
        type="charge.refunded",
        object=sr.charge_refunded("pi_never<!channel>", 50000, 50000),
        livemode=False,
        created=rt.clock.now() - TELL_AFTER,  # Stripe is about to stop trying
    )


def _told(slack_api: Any) -> list[str]:
    return [
        r["params"]["text"]
        for r in slack_api.records("chat.postMessage")
        if r["response"].get("ok") and r["params"].get("channel") == "C0FINANCE"
    ]


def test_an_unmatched_stripe_event_slack_refused_is_told_by_a_later_sweep_once(
    slack_runtime: Runtime, slack_api: Any, clock: FixedClock
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    slack_api.fail_next("chat.postMessage", "service_unavailable")

    result = receive_stripe_event(
        rt, _refund_of_a_payment_never_recorded(rt), slack=chat, links=None
    )

    assert result.status == "unmatched"
    assert slack_api.calls("chat.postMessage")  # tried, and refused
    assert _told(slack_api) == []
    assert sweep(rt, chat).stripe_unmatched_posted == []  # waits for its backoff
    clock.advance(timedelta(minutes=3))
    assert sweep(rt, chat).stripe_unmatched_posted == ["evt_never"]
    assert sweep(rt, chat).stripe_unmatched_posted == []
    [told] = _told(slack_api)
    assert "never recorded" in told and "pi_never&lt;!channel&gt;" in told
    assert "<!channel>" not in told


def test_an_unmatched_stripe_event_slack_took_at_once_is_not_told_again(
    slack_runtime: Runtime, slack_api: Any, clock: FixedClock
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))

    receive_stripe_event(rt, _refund_of_a_payment_never_recorded(rt), slack=chat, links=None)
    clock.advance(timedelta(hours=1))

    assert sweep(rt, chat).stripe_unmatched_posted == []
    assert len(_told(slack_api)) == 1


def test_an_unmatched_stripe_notice_slack_took_though_its_answer_was_lost_is_told_once(
    slack_runtime: Runtime, slack_api: Any, clock: FixedClock
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    slack_api.lose_answer_next("chat.postMessage")

    receive_stripe_event(rt, _refund_of_a_payment_never_recorded(rt), slack=chat, links=None)
    assert slack_api.calls("conversations.history") == []  # a first try reads nothing
    clock.advance(timedelta(minutes=3))
    assert sweep(rt, chat).stripe_unmatched_posted == ["evt_never"]  # found, and kept
    assert sweep(rt, chat).stripe_unmatched_posted == []
    posted = [c for c in slack_api.calls("chat.postMessage") if c.get("channel") == "C0FINANCE"]
    assert len(posted) == 1 and "never recorded" in posted[0]["text"]
    assert slack_api.calls("conversations.history")


def test_a_lost_stripe_notice_is_told_again_where_slack_will_not_let_arbot_read_the_channel(
    slack_runtime: Runtime, slack_api: Any, clock: FixedClock
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    slack_api.lose_answer_next("chat.postMessage")
    receive_stripe_event(rt, _refund_of_a_payment_never_recorded(rt), slack=chat, links=None)
    slack_api.fail_next("conversations.history", "missing_scope")

    clock.advance(timedelta(minutes=3))
    assert sweep(rt, chat).stripe_unmatched_posted == ["evt_never"]
    posted = [c for c in slack_api.calls("chat.postMessage") if c.get("channel") == "C0FINANCE"]
    assert len(posted) == 2  # as before: the finance channel is told
