"""CRM context merged into the ledger's customers: tier, account owner, billing contact, tags.

A CRM account is matched to one customer by the configured key (ARBOT_CRM_MATCH_BY: the email
domain of the customer's contacts, the ledger's customer id kept in the CRM, or the name). The
CRM never touches money, never overrides what a person decided in Slack (never-automate, a
pause), and never guesses: an account matching several customers, or none, is listed for a
person instead. Every change is an Event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import audit
from bot.core.models import Contact, Customer
from bot.core.vocabulary import TIERS
from integrations.base.ledger import FREE_MAIL, CrmAccount, CrmBatch

_SUFFIX = re.compile(r"[\s,.]+(inc|llc|ltd|limited|gmbh|co|corp|corporation|plc|sa|sarl|bv)\.?$")


@dataclass
class CrmMergeSummary:
    source: str
    matched: int = 0
    updated: int = 0
    contacts_added: int = 0
    unmatched: list[str] = field(default_factory=list)  # account names nobody could place
    conflicts: list[str] = field(default_factory=list)  # what a person should look at

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "matched": self.matched,
            "updated": self.updated,
            "contacts_added": self.contacts_added,
            "unmatched": self.unmatched[:50],
            "conflicts": self.conflicts[:50],
        }


def normal_name(name: str) -> str:
    plain = " ".join(name.casefold().replace("&", " and ").split())
    return _SUFFIX.sub("", plain).strip()


class _Index:
    """The customers by each key an account can be matched on."""

    def __init__(self, session: Session) -> None:
        self.customers = {c.id: c for c in session.scalars(select(Customer))}
        self.by_domain: dict[str, set[int]] = {}
        for customer_id, email in session.execute(
            select(Contact.customer_id, Contact.email).where(Contact.email.is_not(None))
        ):
            domain = str(email).rsplit("@", 1)[-1].lower()
            if domain not in FREE_MAIL:  # gmail.com says nothing about which company it is
                self.by_domain.setdefault(domain, set()).add(customer_id)
        self.by_name: dict[str, set[int]] = {}
        self.by_external: dict[str, set[int]] = {}
        for customer in self.customers.values():
            self.by_name.setdefault(normal_name(customer.name), set()).add(customer.id)
            self.by_external.setdefault(customer.external_id, set()).add(customer.id)

    def find(self, account: CrmAccount, match_by: str) -> set[int]:
        if match_by == "external_id":
            return set(self.by_external.get(account.external_id or "", set()))
        if match_by == "name":
            return set(self.by_name.get(normal_name(account.name), set()))
        found: set[int] = set()
        for domain in account.domains:
            if domain.lower() not in FREE_MAIL:
                found |= self.by_domain.get(domain.lower(), set())
        return found


def merge_crm(
    session: Session,
    batch: CrmBatch,
    match_by: str,
    owner_emails: dict[str, str],
    now: datetime,
) -> CrmMergeSummary:
    """Apply the batch inside the caller's transaction. `owner_emails` maps Slack user ids to
    email addresses (ARBOT_OWNER_EMAILS); a CRM owner is found by that email."""
    summary = CrmMergeSummary(batch.source)
    index = _Index(session)
    slack_of = {email.lower(): user for user, email in owner_emails.items()}
    for account in batch.accounts:
        ids = index.find(account, match_by)
        if not ids:
            summary.unmatched.append(account.name)
            continue
        if len(ids) > 1:
            names = ", ".join(sorted(index.customers[i].external_id for i in ids))
            summary.conflicts.append(
                f"{account.name}: matches several customers ({names}) by {match_by}; nothing "
                "changed. Set the customer id on the CRM record, or match by another key."
            )
            continue
        customer = index.customers[ids.pop()]
        summary.matched += 1
        changes = _customer_changes(customer, account, slack_of, summary)
        added = _billing_contact(session, customer, account, now, summary)
        summary.contacts_added += added
        crm_ref = f"{batch.source}:{account.crm_id}"
        if customer.crm_ref != crm_ref:
            customer.crm_ref = crm_ref
        if changes or added:
            for name, (_, after) in changes.items():
                setattr(customer, name, after)
            customer.updated_at = now
            summary.updated += 1
            audit.record(
                session,
                now,
                "customer.crm_updated",
                customer_id=customer.id,
                payload={
                    "source": batch.source,
                    "changes": {k: [_plain(b), _plain(a)] for k, (b, a) in changes.items()},
                    "billing_contact_added": bool(added),
                    # the address it gave, for a guardrail to propose (bot/learning/guardrail_rules.py)
                    "billing_contact": account.billing_contact.email
                    if added and account.billing_contact
                    else None,
                },
            )
    return summary


def _plain(value: object) -> object:
    return list(value) if isinstance(value, (list, tuple)) else value


def _customer_changes(
    customer: Customer,
    account: CrmAccount,
    slack_of: dict[str, str],
    summary: CrmMergeSummary,
) -> dict[str, tuple[object, object]]:
    changes: dict[str, tuple[object, object]] = {}
    if account.tier in TIERS and account.tier != customer.tier:
        if customer.never_automate and account.tier == "transactional":
            # transactional steps may go out without approval: a person said never
            summary.conflicts.append(
                f"{customer.name}: the CRM says transactional, but a person set never-automate "
                "in Slack; the tier changes, and the customer still goes to a person."
            )
        changes["tier"] = (customer.tier, account.tier)
    if account.owner_email:
        owner = slack_of.get(account.owner_email.lower())
        if owner is None:
            summary.conflicts.append(
                f"{customer.name}: owner {account.owner_email} has no Slack user in "
                "ARBOT_OWNER_EMAILS; the owner is unchanged."
            )
        elif owner != customer.owner_slack_id:
            changes["owner_slack_id"] = (customer.owner_slack_id, owner)
    if account.tags:
        merged = sorted(set(customer.tags or []) | set(account.tags))
        if merged != sorted(customer.tags or []):
            changes["tags"] = (list(customer.tags or []), merged)
    return changes


def _billing_contact(
    session: Session,
    customer: Customer,
    account: CrmAccount,
    now: datetime,
    summary: CrmMergeSummary,
) -> int:
    """Add the CRM's billing contact when the ledger does not know that address; never changes
    or removes a contact (consent and opt-outs live with the contact arbot already has)."""
    record = account.billing_contact
    if record is None or not record.email:
        return 0
    contacts = session.scalars(select(Contact).where(Contact.customer_id == customer.id)).all()
    if any((c.email or "").lower() == record.email.lower() for c in contacts):
        return 0
    if any(c.email_opted_out_at or c.email_unusable_at for c in contacts):
        # Someone at this customer asked to stop (or their address bounced): a new address
        # from the CRM must not route around that. A person decides.
        summary.conflicts.append(
            f"{customer.name}: the CRM's billing contact {record.email} was not added: a "
            "contact of this customer opted out or bounces; add it by hand if it is right."
        )
        return 0
    session.add(
        Contact(
            customer_id=customer.id,
            name=record.name,
            email=record.email,
            phone=record.phone,
            role="billing",
            sms_consent=False,  # a CRM does not record consent to texts
            language=record.language,  # the CRM's preferred language (HubSpot's hs_language)
            created_at=now,
            updated_at=now,
        )
    )
    return 1
