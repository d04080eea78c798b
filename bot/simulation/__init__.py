"""The simulation: replaying a ledger's year with and without follow-up to show what arbot would have changed."""
