"""The one small error hierarchy: everything arbot raises on purpose derives from ArbotError."""


class ArbotError(Exception):
    """An error raised on purpose by arbot."""


class UserError(ArbotError):
    """Something the user can fix; the message is what they will read."""


class ValidationFailed(UserError):
    """Input that failed validation; carries every problem found, not only the first."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        count = len(problems)
        noun = "problem" if count == 1 else "problems"
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {count} {noun}, nothing was imported:\n{lines}")
