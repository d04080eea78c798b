"""Stripe webhook events: check `Stripe-Signature` (the stripe library's check of the HMAC, and the
moment it was signed: at most five minutes ago, as Stripe's library allows, and at most five
minutes ahead of this server's clock), then read the fields arbot acts on, checked, into plain
values.

A body that fails the signature is refused (`InvalidStripeEvent`). A signed event whose fields arbot
cannot use (a `created` that is not a time, an id too long for its column or with a NUL in it, an
invoice id beyond any row) is `UnreadableStripeEvent`: it will not read better on a retry, so it
is acknowledged and ignored rather than failed (Stripe retries a failure for three days)."""

from __future__ import annotations

import json
import time
import unicodedata
from datetime import UTC, datetime
from typing import Annotated

import stripe
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from bot.core.ids import parse_id
from integrations.base.payments import StripeEventIn

TOLERANCE_SECONDS = 300  # how long ago an event may have been signed (Stripe's own default)
CLOCK_SKEW_SECONDS = 300  # how far ahead of this server's clock it may have been signed
LATEST_INSTANT = 4_102_444_800  # 2100-01-01T00:00:00Z: a `created` beyond it is no real moment
MINOR_UNITS_BOUND = 10**14  # an amount at or beyond it overflows the ledger's NUMERIC(18, 4)


class InvalidStripeEvent(Exception):
    """A body Stripe did not sign with our secret, signed too long ago or ahead of time, or one that
    is not UTF-8 text."""


class UnreadableStripeEvent(Exception):
    """An event Stripe signed whose fields arbot cannot use: ignored, with why."""


def _printable(text: str) -> str:
    """No control characters (a NUL cannot be stored) and no lone surrogates."""
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in text):
        raise ValueError("contains a control character")
    return text


def _invoice_ids(text: str) -> str:
    if text.strip() and any(parse_id(part.strip()) is None for part in text.split(",")):
        raise ValueError("is not a list of invoice ids separated by commas")
    return text


StripeId = Annotated[
    str, StringConstraints(min_length=1, max_length=128), AfterValidator(_printable)
]
ShortText = Annotated[str, StringConstraints(max_length=255), AfterValidator(_printable)]
Instant = Annotated[int, Field(ge=0, le=LATEST_INSTANT)]
MinorUnits = Annotated[int, Field(ge=0, lt=MINOR_UNITS_BOUND)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")]


class _Metadata(BaseModel):
    model_config = ConfigDict(strict=True)

    arbot_invoice_ids: Annotated[str, AfterValidator(_invoice_ids)] | None = None
    arbot_workspace: ShortText | None = None  # integrations.base.payments.WORKSPACE_KEY


class _Object(BaseModel):
    """The fields of `data.object` that arbot reads (bot/payments/stripe_events.py), as Stripe
    sends them; the others are left as they are."""

    model_config = ConfigDict(strict=True)

    id: StripeId | None = None
    payment_intent: StripeId | None = None
    charge: StripeId | None = None  # a dispute's (bot/payments/stripe_charges.py asks Stripe)
    payment_link: StripeId | None = None
    payment_status: ShortText | None = None
    reason: ShortText | None = None
    currency: Currency | None = None
    amount: MinorUnits | None = None
    amount_total: MinorUnits | None = None
    amount_received: MinorUnits | None = None
    amount_refunded: MinorUnits | None = None
    created: Instant | None = None
    metadata: _Metadata | None = None


class _Data(BaseModel):
    model_config = ConfigDict(strict=True)

    object: _Object


class _Event(BaseModel):
    model_config = ConfigDict(strict=True)

    id: Annotated[
        str, StringConstraints(min_length=1, max_length=255), AfterValidator(_printable)
    ]  # stripe_events.id
    type: Annotated[
        str, StringConstraints(min_length=1, max_length=64), AfterValidator(_printable)
    ]  # stripe_events.type
    created: Instant | None = None
    livemode: bool = False
    data: _Data


def verify(
    payload: bytes, signature: str | None, secret: str, now: float | None = None
) -> StripeEventIn:
    """The event in `payload` if Stripe signed it with `secret` within the tolerance around `now`
    (Unix seconds; this server's clock when not given). Stripe's clock is the wall clock, so
    ARBOT_NOW, which moves the business's day, does not move this."""
    if not secret:
        raise InvalidStripeEvent("STRIPE_WEBHOOK_SECRET is not set")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidStripeEvent("the body is not UTF-8 text") from None
    try:
        stripe.WebhookSignature.verify_header(text, signature, secret, tolerance=None)
    except stripe.SignatureVerificationError as exc:
        raise InvalidStripeEvent(str(exc)) from exc
    _check_when_signed(signed_at(signature or ""), time.time() if now is None else now)
    return read_event(text)


def signed_at(signature: str) -> int:
    """The moment in a verified `Stripe-Signature` (`t=`), read as the stripe library reads it:
    the first `t` element."""
    items = [item.split("=", 2) for item in signature.split(",")]
    return int(next(item[1] for item in items if item[0] == "t"))


def _check_when_signed(at: int, now: float) -> None:
    if at < now - TOLERANCE_SECONDS:
        raise InvalidStripeEvent(
            f"signed more than {TOLERANCE_SECONDS // 60} minutes ago (t={at}): a replay, or "
            "this server's clock is ahead"
        )
    if at > now + CLOCK_SKEW_SECONDS:
        raise InvalidStripeEvent(
            f"signed more than {CLOCK_SKEW_SECONDS // 60} minutes ahead of this server's clock "
            f"(t={at}): check that this server's clock is set right"
        )


def read_event(text: str) -> StripeEventIn:
    """The fields arbot acts on, checked; `object` is `data.object` as Stripe sent it."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UnreadableStripeEvent(f"not JSON: {type(exc).__name__}") from None
    try:
        event = _Event.model_validate(body)
    except ValidationError as exc:
        raise UnreadableStripeEvent(_first_problem(exc)) from None
    return StripeEventIn(
        id=event.id,
        type=event.type,
        object=dict(body["data"]["object"]),
        livemode=event.livemode,
        created=None if event.created is None else datetime.fromtimestamp(event.created, UTC),
    )


def _first_problem(error: ValidationError) -> str:
    """`data.object.created: Input should be a valid integer` (never the value itself)."""
    problem = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in problem["loc"]) or "the event"
    count = error.error_count()
    more = f" (and {count - 1} more)" if count > 1 else ""
    return f"{where}: {problem['msg']}{more}"
