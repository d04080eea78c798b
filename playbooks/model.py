"""What a playbook file says, validated: per tier (and optionally per tag) a ladder of steps."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Tier = Literal["strategic", "standard", "transactional"]
Channel = Literal["email", "sms"]
Action = Literal["remind", "escalate"]
Tone = Literal["courtesy", "friendly", "polite", "firm"]

# Firmness, softest first: a message covering several invoices takes the firmest of their tones.
TONE_ORDER: tuple[str, ...] = ("courtesy", "friendly", "polite", "firm")
TIER_NAMES: tuple[str, ...] = ("strategic", "standard", "transactional")


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z0-9_+\-]{1,40}$")
    offset_days: int = Field(ge=-60, le=365)
    action: Action = "remind"
    channels: tuple[Channel, ...] = ()
    tone: Tone | None = None
    template: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,40}$")
    auto_approve: bool = False
    # Route to a person instead when this many touches on the invoice got no answer and no payment.
    escalate_after_touches: int | None = Field(default=None, ge=1, le=20)
    # Its emails carry a copy (PDF) of each invoice they remind of; None: as
    # ARBOT_ATTACH_INVOICE_PDF says. A text carries none.
    attach_invoice_pdf: bool | None = None

    @model_validator(mode="after")
    def _remind_needs_a_message(self) -> Step:
        if self.action == "remind":
            if not self.channels:
                raise ValueError("a remind step needs at least one channel (email, sms)")
            if self.template is None or self.tone is None:
                raise ValueError("a remind step needs a template and a tone")
            if len(set(self.channels)) != len(self.channels):
                raise ValueError("a channel is listed twice")
        elif self.auto_approve:
            raise ValueError("an escalate step goes to a person; it cannot be auto_approve")
        if self.attach_invoice_pdf and "email" not in self.channels:
            raise ValueError(
                "attach_invoice_pdf needs the email channel: a text cannot carry a copy"
            )
        return self

    def attaches_copies(self, by_default: bool) -> bool:
        """Whether its emails carry copies of their invoices: its own say, else the setting's."""
        return by_default if self.attach_invoice_pdf is None else self.attach_invoice_pdf

    @property
    def human_only(self) -> bool:
        return self.action == "escalate"


Ladder = list[Step]


def _check_ladder(steps: Ladder) -> Ladder:
    if not steps:
        raise ValueError("a ladder needs at least one step")
    keys = [s.key for s in steps]
    if len(set(keys)) != len(keys):
        raise ValueError(f"step keys must be unique, got {keys}")
    offsets = [s.offset_days for s in steps]
    if offsets != sorted(set(offsets)):
        raise ValueError(f"offset_days must increase from step to step, got {offsets}")
    return steps


class Segment(BaseModel):
    """Customers carrying any of these tags follow this segment's ladders instead of the default."""

    model_config = ConfigDict(extra="forbid")

    name: str
    tags: list[str] = Field(min_length=1)
    tiers: dict[Tier, Ladder]

    @field_validator("tags")
    @classmethod
    def _lower(cls, tags: list[str]) -> list[str]:
        return [t.strip().lower() for t in tags]

    @field_validator("tiers")
    @classmethod
    def _ladders(cls, tiers: dict[Tier, Ladder]) -> dict[Tier, Ladder]:
        for ladder in tiers.values():
            _check_ladder(ladder)
        return tiers


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_\-]{1,64}$")
    description: str = ""
    tiers: dict[Tier, Ladder]
    segments: list[Segment] = []
    # The reminder of a payment plan's instalment, `offset_days` from the instalment's date
    # (bot/escalations/plans.py); none is sent when the playbook has no such step.
    instalment: Step | None = None

    @field_validator("instalment")
    @classmethod
    def _instalment_reminds(cls, step: Step | None) -> Step | None:
        if step is not None and (step.action != "remind" or step.offset_days > 0):
            raise ValueError("the instalment step reminds on or before the instalment's date")
        return step

    @field_validator("tiers")
    @classmethod
    def _every_tier(cls, tiers: dict[Tier, Ladder]) -> dict[Tier, Ladder]:
        missing = [t for t in TIER_NAMES if t not in tiers]
        if missing:
            raise ValueError(f"every tier needs a ladder; missing {', '.join(missing)}")
        for ladder in tiers.values():
            _check_ladder(ladder)
        return tiers

    def ladder_for(self, tier: str, tags: list[str] | tuple[str, ...]) -> tuple[str, Ladder]:
        """The ladder a customer follows: the first segment whose tags it carries, else its tier's."""
        tagset = set(tags)
        for segment in self.segments:
            if tagset.intersection(segment.tags) and tier in segment.tiers:
                return f"{segment.name}/{tier}", segment.tiers[tier]
        return tier, self.tiers[tier]  # type: ignore[index]

    def all_steps(self) -> list[tuple[str, Step]]:
        found: list[tuple[str, Step]] = [
            (tier, step) for tier, ladder in self.tiers.items() for step in ladder
        ]
        for segment in self.segments:
            for tier, ladder in segment.tiers.items():
                found.extend((f"{segment.name}/{tier}", step) for step in ladder)
        if self.instalment is not None:
            found.append(("instalment", self.instalment))
        return found

    def templates_used(self) -> set[str]:
        return {step.template for _, step in self.all_steps() if step.template}
