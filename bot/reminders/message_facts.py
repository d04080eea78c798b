"""The facts a reminder's message may not lose when it is rewritten, by a person's edit or an LLM
draft: each invoice number, each amount, the payment link, and, when there is no link, the offer
to send the payment details."""

from __future__ import annotations

import re
from collections.abc import Iterable

from playbooks.lint import PAYMENT_DETAILS

# An amount as English writes it (1,234.56) or as Spanish, French and German do (1.234,56 and
# 1 234,56 with a no-break space), so a rewrite of a message in any of them keeps its amounts.
_AMOUNT_TEXT = r"\d{1,3}(?:[.\u00a0\u202f]\d{3})*,\d\d(?!\d)|\d[\d,]*\.\d\d"
_FACT = re.compile(rf"https?://\S+|[A-Z]{{2,}}-?\d+|{_AMOUNT_TEXT}")
_AMOUNT = re.compile(_AMOUNT_TEXT)
_DETAILS = PAYMENT_DETAILS  # "payment details", "datos de pago", "Bankverbindung"...


def facts(text: str) -> set[str]:
    """What a rewrite may not lose: links, invoice numbers, amounts."""
    return {match.rstrip(".,)") for match in _FACT.findall(text)}


def _names(number: str, text: str) -> bool:
    """Whether `text` names invoice `number` (not as part of a longer one: I-1 is not I-12)."""
    return re.search(rf"(?<![\w-]){re.escape(number)}(?![\w-]*\d)", text) is not None


def missing_facts(before: str, after: str, invoice_numbers: Iterable[str] = ()) -> list[str]:
    """What of `before` is gone from `after`, in words a person can act on; empty = all kept.
    `invoice_numbers` are the invoices the message is about: each must still be named, whatever
    its shape."""
    lost = facts(before) - facts(after)
    lost |= {n for n in invoice_numbers if _names(n, before) and not _names(n, after)}
    missing = []
    links = sorted(f for f in lost if f.startswith(("http://", "https://")))
    amounts = sorted(f for f in lost if _AMOUNT.fullmatch(f))
    numbers = sorted(f for f in lost if f not in links and f not in amounts)
    if numbers:
        missing.append(f"invoice number{'s' if len(numbers) > 1 else ''} {', '.join(numbers)}")
    if amounts:
        missing.append(f"the amount{'s' if len(amounts) > 1 else ''} {', '.join(amounts)}")
    if links:
        missing.append(f"the payment link {links[0]}")
    if _DETAILS.search(before) and not _DETAILS.search(after) and not links:
        missing.append('the offer to send the payment details ("reply for payment details")')
    return missing
