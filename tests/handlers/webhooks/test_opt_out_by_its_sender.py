"""An opt-out written in a reply stops email to the address that wrote it (RULES A7: "suppresses
email to that address only"): a colleague on file who answers the reminder sent to the billing
mailbox is opted out, and the billing mailbox, which asked nothing, still gets its reminders."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from bot.core.models import Contact
from bot.core.runtime import Runtime
from bot.core.tokens import token
from tests.support.inbound_requests import KEY, email_reply, post_mail, the_reminder

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end


def _opted_out(rt: Runtime) -> dict[str, bool]:
    with rt.sessions() as session:
        return {
            str(c.email): c.email_opted_out_at is not None for c in session.scalars(select(Contact))
        }


def _colleague_on_file(rt: Runtime, contact_id: int) -> None:
    with rt.writing() as session:
        billing = session.get(Contact, contact_id)
        assert billing is not None
        session.add(
            Contact(
                customer_id=billing.customer_id,
                name="Jane Park",
                email="Jane.Park@ridgeline.example",
                role="primary",
                created_at=billing.created_at,
                updated_at=billing.updated_at,
            )
        )


def test_a_colleague_on_file_asking_to_stop_is_opted_out_and_the_billing_address_is_not(
    rt: Runtime, app: httpx.Client
) -> None:
    reminder = the_reminder(rt)
    assert reminder.contact_id is not None
    _colleague_on_file(rt, reminder.contact_id)
    to = f"ar+r.{token(KEY, reminder.id, 'reply')}@brightwater.example"
    mail = email_reply("Please stop emailing me.", To=to, From="Jane <jane.park@ridgeline.example>")

    assert post_mail(app, mail).json() == {"status": "reply", "label": "opt_out"}
    assert _opted_out(rt) == {"ap@ridgeline.example": False, "Jane.Park@ridgeline.example": True}


def test_the_contact_the_reminder_went_to_asking_to_stop_is_opted_out(
    rt: Runtime, app: httpx.Client
) -> None:
    reminder = the_reminder(rt)
    assert reminder.contact_id is not None
    _colleague_on_file(rt, reminder.contact_id)
    to = f"ar+r.{token(KEY, reminder.id, 'reply')}@brightwater.example"

    assert (
        post_mail(app, email_reply("Please stop emailing me.", To=to)).json()["label"] == "opt_out"
    )
    assert _opted_out(rt) == {"ap@ridgeline.example": True, "Jane.Park@ridgeline.example": False}
