"""Planning the day: which reminders are due, the guardrails and send windows that hold them, storing the plan and posting it to Slack."""
