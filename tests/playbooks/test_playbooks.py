"""Playbook files, templates, the linter and `arbot playbook check`."""

from __future__ import annotations

import dataclasses
import itertools
import re
import shutil
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.learning.check import check_bundle, sample_contexts
from playbooks.lint import forbidden_phrases, lint_message
from playbooks.loader import BUNDLED, PlaybookError, load_bundle, parse_playbook
from playbooks.render import Rendered, Renderer, RenderError
from playbooks.sms import length, outside_gsm7, segments


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the bundled playbook and its templates to break."""
    shutil.copy(BUNDLED, tmp_path / "playbook.yml")
    shutil.copytree(BUNDLED.parent / "templates", tmp_path / "templates")
    return tmp_path / "playbook.yml"


def test_the_bundled_playbook_renders_and_passes_the_linter() -> None:
    results = check_bundle(load_bundle())
    assert results and all(r.ok for r in results), [r.problems for r in results if not r.ok]
    tiers = {r.ladder for r in results}
    assert {"strategic", "standard", "transactional"} <= tiers


def test_the_bundled_ladders_are_the_ones_promised() -> None:
    playbook = load_bundle().playbook
    standard = [(s.key, s.offset_days, s.action) for s in playbook.tiers["standard"]]
    assert standard == [
        ("courtesy", -3, "remind"),
        ("due_today", 0, "remind"),
        ("plus7", 7, "remind"),
        ("plus14", 14, "remind"),
        ("plus30", 30, "escalate"),
    ]
    strategic = playbook.tiers["strategic"]
    first_person = next(s.offset_days for s in strategic if s.action == "escalate")
    assert first_person < 30  # a person is involved earlier for strategic accounts
    assert any(s.auto_approve for s in playbook.tiers["transactional"])


def test_playbook_check_command_passes_on_the_bundled_playbook(cli: Any) -> None:
    result = cli("playbook", "check")
    assert result.code == 0, result.stderr
    assert "steps render and pass the linter" in result.stdout


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("name: x\ntiers: [", "line 2, column 9: not valid YAML"),
        ("- a list", "expected a mapping"),
        (
            "name: x\ntiers:\n  standard: []\n",
            "tiers: every tier needs a ladder; missing strategic, transactional",
        ),
        (
            BUNDLED.read_text().replace("offset_days: 7,", "offset_days: seven,", 1),
            "tiers.standard[2].offset_days: Input should be a valid integer",
        ),
        (
            BUNDLED.read_text().replace(
                "channels: [email, sms], tone: polite", "channels: [fax], tone: polite", 1
            ),
            "tiers.standard[2].channels[0]: Input should be 'email' or 'sms'",
        ),
        (
            BUNDLED.read_text().replace("offset_days: 14,", "offset_days: 5,", 1),
            "offset_days must increase from step to step",
        ),
    ],
)
def test_a_bad_playbook_file_names_the_place_inside_it(yaml_text: str, expected: str) -> None:
    with pytest.raises(PlaybookError) as caught:
        parse_playbook(yaml_text, "playbook.yml")
    assert "playbook.yml: " in str(caught.value)
    assert expected in str(caught.value)


def test_a_missing_variable_is_an_error_at_check_never_a_blank(copy: Path, cli: Any) -> None:
    body = copy.parent / "templates" / "polite" / "body.txt.j2"
    body.write_text(body.read_text() + "\nYour account manager: {{ customer.account_manager }}\n")
    result = cli("playbook", "check", str(copy))
    assert result.code == 1
    assert "step plus7" in result.stderr
    assert "template polite/body.txt.j2" in result.stderr
    assert "account_manager" in result.stderr


def test_a_threat_in_an_automated_step_is_refused(copy: Path, cli: Any) -> None:
    sms = copy.parent / "templates" / "firm" / "sms.txt.j2"
    sms.write_text("Pay now or we will pass this to a collection agency. Reply STOP to opt out.")
    result = cli("playbook", "check", str(copy))
    assert result.code == 1
    assert "SMS: no automated message may mention collection agencies" in result.stderr


def test_a_missing_template_file_is_named(copy: Path, cli: Any) -> None:
    (copy.parent / "templates" / "gentle" / "sms.txt.j2").unlink()
    result = cli("playbook", "check", str(copy))
    assert result.code == 1
    assert "template 'gentle' has no" in result.stderr


@pytest.mark.parametrize(
    "phrase",
    [
        "we may take legal action",
        "our attorney",
        "a collection agency",
        "report this to the credit bureau",
        "suspension of service",
        "final notice",
        "a late fee applies",
        "20% off your next order",
    ],
)
def test_the_linter_refuses_what_no_automated_message_may_say(phrase: str) -> None:
    assert forbidden_phrases(phrase)


def test_the_linter_accepts_ordinary_courteous_words() -> None:
    assert (
        forbidden_phrases(
            "Thank you for your business. Could you let us know when to expect payment?"
        )
        == []
    )


def test_every_message_needs_an_opt_out_and_sms_fits() -> None:
    message = Rendered(
        subject="Invoice", text="Please pay.", html="<p>Please pay.</p>", sms="x" * 307
    )
    problems = lint_message(message)
    assert "text body: has no opt-out line (e.g. how to stop these emails)" in problems
    assert "SMS: has no 'Reply STOP' opt-out" in problems
    assert "SMS: takes 3 segments (307 characters); at most 2 are sent (306 characters)" in problems


def test_forbidden_phrases_written_with_html_entities_are_found_in_the_html_body() -> None:
    """An email client shows `legal&nbsp;action` as "legal action": the linter reads the HTML
    body as it is shown, its entities decoded and its no-break spaces as spaces."""
    message = Rendered(
        subject="Invoice INV-1",
        text="Invoice INV-1 is open. To stop these emails, reply unsubscribe.",
        html=(
            "<p>We may take legal&nbsp;action, and late&#160;fees apply; a&#32;final&nbsp;notice."
            "</p><p>To stop these emails, reply unsubscribe.</p>"
        ),
        sms="Invoice INV-1 is open. Reply STOP to opt out.",
    )
    problems = lint_message(message)
    assert [p.split(" (")[0] for p in problems] == [
        "HTML body: no automated message may mention legal action",
        "HTML body: no automated message may mention threats",
        "HTML body: no automated message may mention fees or penalties",
    ]


@pytest.mark.parametrize(
    "written",
    [
        "le&shy;gal action",
        "le\u00adgal action",
        "le<span>gal</span> action",
        "le<b>gal</b> action",
        '<a href="https://x.example">le</a>gal action',
        "le<font color=red>gal</font> action",
        "legal&#8203; action",
        "le&#x200B;gal action",
        "le\u2060gal\ufeff action",
        "le&zwj;gal action",
        "le<!-- -->gal action",
    ],
)
def test_the_html_body_is_read_as_shown_without_invisible_characters_or_inline_tags(
    written: str,
) -> None:
    """A soft hyphen, a zero-width character or an inline tag shows nothing between two letters:
    `le&shy;gal action` and `le<span>gal</span> action` read "legal action"."""
    message = Rendered(
        subject="Invoice INV-1",
        text="Invoice INV-1 is open. To stop these emails, reply unsubscribe.",
        html=f"<p>We may take {written}.</p><p>To stop these emails, reply unsubscribe.</p>",
        sms="Invoice INV-1 is open. Reply STOP to opt out.",
    )
    assert [p.split(" (")[0] for p in lint_message(message)] == [
        "HTML body: no automated message may mention legal action"
    ]


def test_block_tags_still_part_the_words_of_the_html_body() -> None:
    """A paragraph, a cell or a line break ends a word as it is shown: `<p>fi</p><p>nal notice`
    reads "fi nal notice", no threat, while `<p>final</p><p>notice</p>` reads "final notice"."""

    def problems(html_body: str) -> list[str]:
        message = Rendered(
            subject="Invoice INV-1",
            text="Invoice INV-1 is open. To stop these emails, reply unsubscribe.",
            html=html_body + "<p>To stop these emails, reply unsubscribe.</p>",
            sms="Reply STOP to opt out.",
        )
        return lint_message(message)

    assert problems("<p>fi</p><p>nal notice</p>") == []
    assert problems("<td>fi</td><td>nal notice</td>") == []
    assert problems("fi<br>nal notice") == []
    assert [p.split(" (")[0] for p in problems("<p>final</p><p>notice</p>")] == [
        "HTML body: no automated message may mention threats"
    ]


def test_a_text_is_measured_in_the_segments_its_sender_sends_not_in_characters() -> None:
    """One character outside the GSM-7 alphabet (the ë of a contact's name) makes every segment
    hold 67 characters: a text of 135 to 306 characters, which would fit in 2 segments of 153,
    takes 3 or more, which the sender refuses."""
    _, context = sample_contexts(7)[0]
    context["contact"]["first_name"] = "Zoë"
    message = Renderer(load_bundle().templates).render("polite", context, "sms")
    assert 134 < len(message.sms) <= 306
    problems = [p for p in lint_message(message) if p.startswith("SMS")]
    assert len(problems) == 1
    count = -(-len(message.sms) // 67)
    assert problems[0].startswith(f"SMS: takes {count} segments ({len(message.sms)} characters;")
    assert "'ë' (U+00EB) is not in the GSM-7 alphabet" in problems[0]
    assert "at most 2 are sent (134 characters with it, 306 without)" in problems[0]


def test_templates_run_in_a_sandbox() -> None:
    renderer = Renderer(
        {
            "evil/subject.txt.j2": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "evil/body.txt.j2": "",
            "evil/body.html.j2": "",
            "evil/sms.txt.j2": "",
        }
    )
    with pytest.raises(RenderError, match=r"evil/subject\.txt\.j2"):
        renderer.render("evil", {})


def test_html_is_escaped_and_text_is_not() -> None:
    bundle = load_bundle()
    _, context = sample_contexts(7)[0]
    context["customer"]["name"] = "<script>alert(1)</script> & Sons"
    context["contact"]["first_name"] = None
    message = Renderer(bundle.templates).render("polite", context)
    assert "<script>" not in message.html
    assert "&lt;script&gt;" in message.html
    assert "<script>alert(1)</script> & Sons" in message.text


def test_every_bundled_sms_fits_in_two_segments_in_every_language_with_a_long_link() -> None:
    """In every month (a French août has a letter outside GSM-7, which would make each segment
    hold 67 characters) and for small and large amounts alike."""
    bundle = load_bundle()
    renderer = Renderer(bundle.templates)
    too_long = []
    amounts = [Decimal("7.50"), Decimal("1250.00"), Decimal("98765.43"), Decimal("1234567.89")]
    for template in bundle.playbook.templates_used():
        for language in [None, *sorted(renderer.languages(template))]:
            for month, amount in itertools.product(range(1, 13), amounts):
                day = date(2026, month, 28)
                for situation, context in sample_contexts(7, language, day=day, amount=amount):
                    sms = renderer.render(template, context, "sms", language).sms
                    if segments(sms) > 2:
                        too_long.append((template, language, situation, segments(sms), sms))
    assert too_long == []


def test_an_sms_writes_its_dates_in_digits_and_an_email_in_words() -> None:
    """August's û is outside GSM-7: in a French text it would make each segment hold 67
    characters, so a text writes "03/08/2026" while the email keeps "3 août 2026"."""
    renderer = Renderer(load_bundle().templates)
    _, context = sample_contexts(7, "fr", day=date(2026, 8, 10))[0]
    message = renderer.render("quick_nudge", context, language="fr")
    assert "3 août 2026" in message.text
    assert "03/08/2026" in message.sms and "août" not in message.sms
    assert lint_message(message, "fr") == []


@pytest.mark.parametrize(
    ("language", "written"),
    [(None, "August 3, 2026"), ("en-GB", "3 August 2026"), ("en-AU", "3 August 2026")],
)
def test_an_english_sms_names_the_month_so_no_reader_takes_the_day_for_it(
    language: str | None, written: str
) -> None:
    """8/3/2026 is 3 August to a US reader and 8 March to a UK or Australian one; English month
    names are all in GSM-7, so an English text names the month as its email does."""
    renderer = Renderer(load_bundle().templates)
    _, context = sample_contexts(7, language, day=date(2026, 8, 10))[0]
    message = renderer.render("quick_nudge", context)  # the English texts, in the reader's locale
    assert written in message.text
    assert written in message.sms
    assert not re.search(r"\d/\d", message.sms)
    assert outside_gsm7(message.sms) == []
    assert lint_message(message) == []


@pytest.mark.parametrize(
    ("language", "opening"), [(None, "A quick heads-up:"), ("es", "Un recordatorio amistoso:")]
)
def test_playbook_check_holds_a_text_that_fits_in_march_but_not_on_its_longest_dates(
    language: str | None, opening: str
) -> None:
    """A text's dates are longer in some months ("September 30, 2026", "30/12/2026") than in
    March: a template that fits its two segments only on the shorter dates would be held on the
    longer ones, so the check measures every text on the longest dates of its language."""
    bundle = load_bundle()
    name = f"courtesy/{language}/sms.txt.j2" if language else "courtesy/sms.txt.j2"
    (step,) = [
        s
        for ladder, s in bundle.playbook.all_steps()
        if ladder == "standard" and s.key == "courtesy"
    ]

    def lengths(templates: dict[str, str], day: date) -> list[int]:
        renderer = Renderer(templates)
        return [
            length(renderer.render("courtesy", context, "sms", language).sms)
            for _, context in sample_contexts(step.offset_days, language, day=day)
        ]

    march = date(2026, 3, 16)
    padding = "x" * (306 - max(lengths(bundle.templates, march)) - 1)
    templates = {
        **bundle.templates,
        name: bundle.templates[name].replace(opening, f"{opening} {padding}", 1),
    }
    assert max(lengths(templates, march)) == 306  # fits in March
    year = [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]
    assert any(max(lengths(templates, day)) > 306 for day in year)  # but not every day
    padded = dataclasses.replace(bundle, templates=templates)
    (check,) = [c for c in check_bundle(padded) if c.ladder == "standard" and c.step == "courtesy"]
    where = f"[{language}] " if language else ""
    assert any(p.startswith(where) and "SMS: takes 3 segments" in p for p in check.problems), (
        check.problems
    )


def test_a_step_checked_before_is_checked_again_when_a_template_text_changes() -> None:
    """The check keeps each step's verdict by the template texts, the step's template and its
    day: the same playbook with one text changed gets the verdict of that text."""
    bundle = load_bundle()
    assert all(check.ok for check in check_bundle(bundle))
    broken = {**bundle.templates, "polite/body.txt.j2": "Pay now."}
    checked = check_bundle(dataclasses.replace(bundle, templates=broken))
    assert {check.template for check in checked if not check.ok} == {"polite"}
    assert all(
        any("opt-out" in problem or "INV-1042" in problem for problem in check.problems)
        for check in checked
        if check.template == "polite"
    )
    assert all(check.ok for check in check_bundle(bundle))
