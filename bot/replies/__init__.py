"""Replies from customers: matching an email or a text to its account, triage, promised dates, bounces and opt-outs."""
