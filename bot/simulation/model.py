"""How simulated customers behave: the behaviour model the simulation runs against, and reading
one from a YAML file. Its default probabilities are assumptions, not measurements of real
customers (docs/behaviour/simulation.md lists each with what it implies); `bot.simulation.fit`
fits them to a ledger's own history."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from bot.core.errors import UserError

Tier = Literal["strategic", "standard", "transactional"]
Probability = Annotated[float, Field(ge=0, le=1)]
Factor = Annotated[float, Field(ge=0, le=10)]


@dataclass(frozen=True)
class BehaviourModel:
    """How simulated customers behave. Probabilities are per invoice and business day unless the
    name says otherwise."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    # An invoice that is due is paid today with nothing said to the customer.
    pay_daily: dict[Tier, Probability] = field(
        default_factory=lambda: {"strategic": 0.025, "standard": 0.02, "transactional": 0.03}
    )
    # Invoices not yet due are paid at this share of that rate (a few customers pay early).
    not_yet_due_factor: Factor = 0.5
    # The unprompted rate halves every this many days past due (old debts pay less).
    halving_days_overdue: Annotated[int, Field(ge=1, le=3650)] = 60
    # Added to the day's probability when a reminder about the invoice arrived that day.
    pay_on_touch_day: dict[Tier, Probability] = field(
        default_factory=lambda: {"strategic": 0.08, "standard": 0.10, "transactional": 0.12}
    )
    # A text message's lift relative to an email's (texts are read sooner).
    sms_touch_factor: Factor = 1.2
    # Per customer who got a reminder that day: they write back / they dispute.
    reply_after_touch: Probability = 0.05
    dispute_after_touch: Probability = 0.01
    # A disputed invoice is paid at this share of the unprompted rate (until a person resolves it).
    disputed_pay_factor: Factor = 0.5
    # New invoices keep coming, at this multiple of the sample ledger's billing pace (0 = none).
    billing_factor: Factor = 1.0

    def pay_probability(
        self, tier: str, days_overdue: int, touched_by: str | None, disputed: bool
    ) -> float:
        """p(tier, days overdue, reminded today?) for one invoice on one business day."""
        base = float(self.pay_daily.get(tier, 0.0))  # type: ignore[call-overload]
        if days_overdue < 0:
            base *= self.not_yet_due_factor
        else:
            base *= 0.5 ** (days_overdue / self.halving_days_overdue)
        if disputed:
            base *= self.disputed_pay_factor
        lift = 0.0
        if touched_by is not None and not disputed:
            lift = float(self.pay_on_touch_day.get(tier, 0.0))  # type: ignore[call-overload]
            lift *= self.sms_touch_factor if touched_by == "sms" else 1.0
        return min(1.0, base + lift)


_MODEL = TypeAdapter(BehaviourModel)
_TIER_FIELDS = ("pay_daily", "pay_on_touch_day")


def load_model(path: Path) -> BehaviourModel:
    """Read a behaviour model from YAML; names left out keep their defaults. An error names the
    file and the field to fix."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: a folder, not a file; name the model's YAML file") from None
    except PermissionError:
        raise UserError(f"{path}: not allowed to read it; check the file's permissions") from None
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: not UTF-8 text (byte {exc.start}); save the model as UTF-8 YAML"
        ) from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected names and values, e.g. `reply_after_touch: 0.05`")
    defaults = BehaviourModel()
    for name in _TIER_FIELDS:
        if isinstance(data.get(name), dict):
            data[name] = {**getattr(defaults, name), **data[name]}
    try:
        return _MODEL.validate_python(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        ]
        known = ", ".join(f.name for f in fields(BehaviourModel))
        raise UserError(f"{path}: " + "; ".join(problems) + f" (known names: {known})") from None
