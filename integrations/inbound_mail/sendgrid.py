"""SendGrid Inbound Parse, with "POST the raw, full MIME message" ticked: a multipart form whose
`email` field is the message as it arrived. SendGrid signs nothing here: the URL it posts to
carries basic-auth credentials (https://user:password@host/webhooks/email/sendgrid)."""

from __future__ import annotations


def message_from_form(form: dict[str, bytes]) -> bytes | None:
    """The raw message, or None when the form is SendGrid's parsed one (the raw option unset)."""
    return form.get("email")
