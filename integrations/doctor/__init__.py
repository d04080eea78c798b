"""`arbot doctor`: each configured integration checked live, with what is wrong in words.

Each module checks one kind of service with the clients and base-URL settings the app uses and
returns `Finding`s (integrations/doctor/findings.py), never raising for what the service answers;
`run_checks` runs them side by side, each bounded by a timeout, so one that hangs or fails never
stops the others. Nothing is sent: no message, no text, no note, no payment link."""
