"""Payments: recording them, reconciling bank lines to invoices, Stripe payment links and events, and the reviews a person settles in Slack."""
