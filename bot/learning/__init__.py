"""The learning loop: playbook versions and checks, edits that become templates, outcomes and metrics, evidence-based proposals a person approves, and the weekly review."""
