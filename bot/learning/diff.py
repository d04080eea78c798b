"""A playbook version's changes as a person reads them in Slack: the playbook file as a diff, then
each template it adds or changes, cut at a line to fit one Slack section."""

from __future__ import annotations

import difflib

from playbooks.loader import Bundle

DIFF_LIMIT = 2800  # characters: a Slack section holds 3,000, with room for the code fence
DIFF_PARTS = ("subject.txt.j2", "body.txt.j2", "sms.txt.j2")  # the HTML body follows body.txt


def readable_diff(old_yaml: str, new_yaml: str, limit: int = DIFF_LIMIT) -> str:
    """A unified diff of two playbook files, cut at a line to fit `limit` characters."""
    lines = list(
        difflib.unified_diff(
            old_yaml.splitlines(), new_yaml.splitlines(), "active", "proposed", lineterm="", n=1
        )
    )
    return _fit(lines, limit)


def _fit(lines: list[str], limit: int) -> str:
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        note = f"… {len(lines) - index} more lines"
        if used + len(line) + 1 + len(note) > limit:
            return "\n".join([*kept, note])
        kept.append(line)
        used += len(line) + 1
    return "\n".join(kept)


def version_diff(old_content: str, new_content: str, limit: int = DIFF_LIMIT) -> str:
    """What a version changes: the playbook file as a diff, then each template it adds (its text
    in full: what customers would read) or changes (as a diff). The HTML body follows the text."""
    old = Bundle.from_json(old_content, "active")
    new = Bundle.from_json(new_content, "proposed")
    lines = list(
        difflib.unified_diff(
            old.source.splitlines(), new.source.splitlines(), "active", "proposed", lineterm="", n=1
        )
    )
    known = {key.split("/", 1)[0] for key in old.templates}
    replaces = _replaced_templates(old, new)
    for name in sorted(new.playbook.templates_used()):
        base = name if name in known else replaces.get(name, "")
        changed = [
            p
            for p in DIFF_PARTS
            if old.templates.get(f"{base}/{p}") != new.templates[f"{name}/{p}"]
        ]
        if name not in known:
            lines.append(f"=== new template {name}" + (f" (in place of {base})" if base else ""))
            lines += [f"{part}:\n{new.templates[f'{name}/{part}']}" for part in changed]
            continue
        for part in changed:
            key = f"{name}/{part}"
            lines += difflib.unified_diff(
                old.templates[key].splitlines(),
                new.templates[key].splitlines(),
                key,
                key,
                lineterm="",
                n=1,
            )
    return _fit("\n".join(lines).splitlines(), limit)


def _replaced_templates(old: Bundle, new: Bundle) -> dict[str, str]:
    """New template name -> the template its step used before."""
    before = {(ladder, s.key): s.template for ladder, s in old.playbook.all_steps()}
    return {
        step.template: used
        for ladder, step in new.playbook.all_steps()
        if step.template and (used := before.get((ladder, step.key))) and used != step.template
    }
