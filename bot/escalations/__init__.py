"""Escalations: a person's thread for an account that needs one, opened, claimed, resolved, posted to Slack, and the sweeps that make sure nothing waits unseen."""
