"""Inbound mail as the mail services post it: Mailgun routes, SendGrid Inbound Parse, Postmark's
inbound webhook and Amazon SES through SNS. Each module checks its service's signature and turns
what it posted back into the raw RFC 5322 message the reply pipeline reads."""
