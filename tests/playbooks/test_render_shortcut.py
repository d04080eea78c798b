"""The renderer's shortcut for `x.name` on a plain dict answers exactly as the sandbox does: the
item when `name` is a key and no attribute of dict, a dict's own method when it is one (`items`),
an unsafe attribute refused, and a missing name undefined (an error, never a blank)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from playbooks.render import Renderer, RenderError, _Sandbox

NAMES = st.one_of(
    st.sampled_from(["items", "keys", "get", "__class__", "_private", "balance", "mro", "copy"]),
    st.text(min_size=1, max_size=8),
)


@given(st.dictionaries(NAMES, st.integers()), NAMES)
def test_the_shortcut_answers_as_the_sandbox(values: dict[str, int], name: str) -> None:
    plain = SandboxedEnvironment(undefined=StrictUndefined)
    fast = _Sandbox(undefined=StrictUndefined)
    expected, got = plain.getattr(values, name), fast.getattr(values, name)
    assert type(got) is type(expected)
    assert repr(got) == repr(expected)


def test_a_template_reaching_for_a_dicts_insides_is_still_refused() -> None:
    renderer = Renderer(
        {
            "t/subject.txt.j2": "{{ invoice.__class__.__subclasses__() }}",
            "t/body.txt.j2": "{{ invoice.balance }} {{ invoice.items }}",
            "t/body.html.j2": "{{ invoice.nothing }}",
            "t/sms.txt.j2": "x",
        }
    )
    with pytest.raises(RenderError):
        renderer.render("t", {"invoice": {"balance": "$1.00"}}, "email")
    with pytest.raises(RenderError, match="nothing"):
        Renderer(
            {"u/subject.txt.j2": "s", "u/body.txt.j2": "b", "u/body.html.j2": "{{ x.nothing }}"}
        ).render("u", {"x": {"balance": 1}}, "email")


def test_a_changed_text_renders_as_changed_and_an_included_text_is_escaped_in_html_only() -> None:
    """Compiled code is kept by each template's name and text: a renderer of the same names with
    one text changed renders the change, and a text part included in the HTML part is escaped
    there and nowhere else, whichever sandbox compiled it first."""
    parts = {
        "t/subject.txt.j2": "Invoice {{ number }}",
        "t/body.txt.j2": "Owed: {{ owed }}",
        "t/body.html.j2": "<p>{% include 't/body.txt.j2' %}</p>",
        "t/sms.txt.j2": "{{ owed }}",
    }
    context = {"number": "INV-1", "owed": "<b>$5</b> & more"}
    first = Renderer(parts).render("t", context)
    assert first.text == "Owed: <b>$5</b> & more\n"
    assert first.html == "<p>Owed: &lt;b&gt;$5&lt;/b&gt; &amp; more</p>\n"
    assert first.sms == "<b>$5</b> & more"
    changed = Renderer({**parts, "t/body.txt.j2": "Still owed: {{ owed }}"}).render("t", context)
    assert changed.text == "Still owed: <b>$5</b> & more\n"
    assert changed.html == "<p>Still owed: &lt;b&gt;$5&lt;/b&gt; &amp; more</p>\n"
    assert changed.subject == first.subject == "Invoice INV-1"
