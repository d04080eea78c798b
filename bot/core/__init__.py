"""The shared kernel: settings, database, models and migrations, clock, money, audit, logs and locks.

Every other package of `bot/` builds on this one, and `integrations/` may import it and nothing else of `bot/`."""
