"""Editing one step of a playbook file in place: a new template, channel order or day for that
step, its auto_approve flag, or the step dropped, with comments, layout and every other line left as a person wrote
them, so a diff shows only the change."""

from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from playbooks.loader import parse_playbook


def edit_step(
    source: str,
    ladder: str,
    step_key: str,
    *,
    template: str | None = None,
    channels: list[str] | None = None,
    offset_days: int | None = None,
) -> str:
    """The playbook file with one step's template, channel order or day changed in place: comments,
    layout and every other line stay as a person wrote them, so the diff shows only the change."""
    root = yaml.compose(source)
    if root is None:
        raise ValueError("the playbook file is empty")
    step = _step_node(root, ladder, step_key)
    edits: list[tuple[int, int, str]] = []
    if template is not None:
        node = _value(step, "template")
        if not isinstance(node, ScalarNode):
            raise ValueError(f"step {step_key} of {ladder} has no template to replace")
        edits.append((node.start_mark.index, node.end_mark.index, _plain(template)))
    if channels is not None:
        node = _value(step, "channels")
        if not isinstance(node, SequenceNode) or len(node.value) != len(channels):
            raise ValueError(f"step {step_key} of {ladder}: channels cannot be reordered in place")
        edits += [
            (item.start_mark.index, item.end_mark.index, _plain(channel))
            for item, channel in zip(node.value, channels, strict=True)
        ]
    if offset_days is not None:
        node = _value(step, "offset_days")
        if not isinstance(node, ScalarNode):
            raise ValueError(f"step {step_key} of {ladder} has no day to change")
        edits.append((node.start_mark.index, node.end_mark.index, str(offset_days)))
    text = source
    for start, end, value in sorted(edits, reverse=True):
        text = text[:start] + value + text[end:]
    _expect(source, text, ladder, step_key, template, channels, offset_days)
    return text


def drop_step(source: str, ladder: str, step_key: str) -> str:
    """The playbook file without one step of one ladder: the lines that held it go, every other
    line stays as a person wrote it. Only a step written on lines of its own can be dropped."""
    root = yaml.compose(source)
    if root is None:
        raise ValueError("the playbook file is empty")
    node = _step_node(root, ladder, step_key)
    lines = source.splitlines(keepends=True)
    first, last = node.start_mark.line, node.end_mark.line
    if not lines[first][: node.start_mark.column].strip() == "-":
        raise ValueError(f"step {step_key} of {ladder} does not start a line of its own")
    if lines[last][node.end_mark.column :].strip():
        raise ValueError(f"step {step_key} of {ladder} shares its last line with something else")
    text = "".join(lines[:first] + lines[last + 1 :])
    wanted = parse_playbook(source, "active").model_dump()
    steps = _ladder_of(wanted, ladder)
    steps.remove(next(s for s in steps if s["key"] == step_key))
    _set_ladder(wanted, ladder, steps)
    if parse_playbook(text, "proposed").model_dump() != wanted:
        raise ValueError(f"dropping step {step_key} of {ladder} changed more than that step")
    return text


def _expect(
    before: str,
    after: str,
    ladder: str,
    step_key: str,
    template: str | None,
    channels: list[str] | None,
    offset_days: int | None = None,
) -> None:
    """The edited file must say exactly the old playbook with that one change, nothing else."""
    wanted = parse_playbook(before, "active").model_dump()
    for step in _ladder_of(wanted, ladder):
        if step["key"] == step_key:
            step["template"] = template if template is not None else step["template"]
            step["channels"] = tuple(channels) if channels is not None else step["channels"]
            if offset_days is not None:
                step["offset_days"] = offset_days
    if parse_playbook(after, "proposed").model_dump() != wanted:
        raise ValueError(f"editing step {step_key} of {ladder} changed more than that step")


def set_auto_approve(source: str, ladder: str, step_key: str, value: bool) -> str:
    """The playbook file with one step's `auto_approve` set (its value replaced, or the key added
    to the step's mapping), every other line as a person wrote it."""
    root = yaml.compose(source)
    if root is None:
        raise ValueError("the playbook file is empty")
    step = _step_node(root, ladder, step_key)
    flag = "true" if value else "false"
    node = _value(step, "auto_approve")
    if isinstance(node, ScalarNode):
        text = source[: node.start_mark.index] + flag + source[node.end_mark.index :]
    elif isinstance(step, MappingNode) and step.flow_style:
        end = source.rindex("}", 0, step.end_mark.index)
        text = source[:end].rstrip(" ") + f", auto_approve: {flag}" + source[end:]
    elif isinstance(step, MappingNode) and step.value:
        first = step.value[0][0]
        lines = source.splitlines(keepends=True)
        last = step.value[-1][1].end_mark
        at = last.line if last.column else last.line - 1
        lead = " " * first.start_mark.column
        text = "".join([*lines[: at + 1], f"{lead}auto_approve: {flag}\n", *lines[at + 1 :]])
    else:
        raise ValueError(f"step {step_key} of {ladder} is not a mapping")
    wanted = parse_playbook(source, "active").model_dump()
    for found in _ladder_of(wanted, ladder):
        if found["key"] == step_key:
            found["auto_approve"] = value
    if parse_playbook(text, "proposed").model_dump() != wanted:
        raise ValueError(f"setting auto_approve of step {step_key} of {ladder} changed more")
    return text


def _ladder_of(dump: dict[str, Any], ladder: str) -> list[dict[str, Any]]:
    segment, _, tier = ladder.rpartition("/")
    if not segment:
        return list(dump["tiers"][tier])
    found = next(s for s in dump["segments"] if s["name"] == segment)
    return list(found["tiers"][tier])


def add_step(source: str, ladder: str, after_key: str, step: dict[str, Any]) -> str:
    """The playbook file with a new step on a line of its own right after step `after_key` of a
    ladder, written as a one-line mapping indented like that step; every other line stays."""
    root = yaml.compose(source)
    if root is None:
        raise ValueError("the playbook file is empty")
    node = _step_node(root, ladder, after_key)
    lines = source.splitlines(keepends=True)
    first, last = node.start_mark.line, node.end_mark.line
    lead = lines[first][: node.start_mark.column]
    if lead.strip() != "-" or lines[last][node.end_mark.column :].strip():
        raise ValueError(f"step {after_key} of {ladder} is not on lines of its own")
    fields = ", ".join(f"{name}: {_flow(value)}" for name, value in step.items())
    text = "".join([*lines[: last + 1], f"{lead}{{{fields}}}\n", *lines[last + 1 :]])
    wanted = parse_playbook(source, "active").model_dump()
    steps = _ladder_of(wanted, ladder)
    at = next(n for n, s in enumerate(steps) if s["key"] == after_key) + 1
    added = parse_playbook(text, "proposed").model_dump()
    steps.insert(at, _ladder_of(added, ladder)[at])
    _set_ladder(wanted, ladder, steps)
    if added != wanted or _ladder_of(added, ladder)[at]["key"] != step["key"]:
        raise ValueError(f"adding a step after {after_key} of {ladder} changed more than that")
    return text


def _flow(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_plain(str(v)) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return _plain(str(value)) if isinstance(value, str) else str(value)


def _set_ladder(dump: dict[str, Any], ladder: str, steps: list[dict[str, Any]]) -> None:
    segment, _, tier = ladder.rpartition("/")
    if not segment:
        dump["tiers"][tier] = steps
        return
    found = next(s for s in dump["segments"] if s["name"] == segment)
    found["tiers"][tier] = steps


def _value(mapping: Node, key: str) -> Node | None:
    if not isinstance(mapping, MappingNode):
        return None
    for name, value in mapping.value:
        if isinstance(name, ScalarNode) and name.value == key:
            found: Node = value
            return found
    return None


def _step_node(root: Node, ladder: str, step_key: str) -> Node:
    segment, _, tier = ladder.rpartition("/")
    holder: Node | None = root
    if segment:
        segments = _value(root, "segments")
        items = segments.value if isinstance(segments, SequenceNode) else []
        holder = next((s for s in items if _scalar(_value(s, "name")) == segment), None)
    tiers = _value(holder, "tiers") if holder is not None else None
    steps = _value(tiers, tier) if tiers is not None else None
    for item in steps.value if isinstance(steps, SequenceNode) else []:
        if _scalar(_value(item, "key")) == step_key:
            return item  # type: ignore[no-any-return]
    raise ValueError(f"the playbook has no step {step_key} in {ladder}")


def _scalar(node: Node | None) -> str | None:
    return str(node.value) if isinstance(node, ScalarNode) else None


def _plain(value: str) -> str:
    """A YAML scalar that reads back as this string (quoted when plain would not)."""
    return value if yaml.safe_load(value) == value else json.dumps(value)
