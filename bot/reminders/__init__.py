"""Reminders from approval to delivery: approving, the outbox that claims and records each send exactly once, sending, delivery reports and drafts."""
