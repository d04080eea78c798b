"""A proposed playbook revision, as the learning loop's rules make it: the whole new playbook
version (the YAML plus the templates it uses, as a PlaybookVersion stores them) with its evidence
in words and in numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playbooks.loader import Bundle, parse_playbook


@dataclass(frozen=True)
class Proposal:
    rule: str  # "softened" | "channel_order" | "timing" | "drop_step" | "add_step"
    change: str  # what changes, e.g. "softened:strategic:gentle": one waiting proposal per change
    ladder: str  # "strategic", or "patients/standard" for a segment's ladder
    step: str
    rationale: str  # the evidence, in words
    playbook_yaml: str  # the whole new playbook file
    templates: dict[str, str]  # every template source it uses ("name/part" -> source)
    evidence: dict[str, Any] = field(default_factory=dict)  # the numbers behind the rationale

    def bundle(self) -> Bundle:
        return Bundle(
            playbook=parse_playbook(self.playbook_yaml, "proposal"),
            source=self.playbook_yaml,
            templates=dict(self.templates),
            label=f"proposal {self.change}",
        )


def ladder_words(ladder: str) -> str:
    segment, _, tier = ladder.rpartition("/")
    return f"{tier} accounts in segment {segment}" if segment else f"{tier} accounts"
