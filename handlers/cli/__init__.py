"""The `arbot` command line: one module per command group, each a thin entry point into `bot/`."""
