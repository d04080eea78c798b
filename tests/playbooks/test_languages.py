"""Reminders in the customer's language: the bundled Spanish, French and German templates, their
formats, the English fallback, the linter's phrases in each language and `playbook check`."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.learning.check import check_bundle, sample_contexts
from bot.ledger.upsert import apply_batch
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.csv_ledger import read_ledger_csv
from playbooks.lint import forbidden_phrases, lint_message, missing_contents
from playbooks.loader import BUNDLED, PlaybookError, load_bundle
from playbooks.render import Rendered, Renderer
from tests.support.ledger_files import HEADER, row, write

TODAY = date(2026, 3, 16)
NNBSP, NBSP = "\u202f", "\u00a0"


def plan_one(runtime: Runtime, tmp_path: Path, language: str) -> Reminder:
    """One customer, one EUR invoice of 1,234.56 due on 3 March (the +7 email today)."""
    ledger = write(
        tmp_path / "ledger.csv",
        [
            row(
                currency="EUR",
                amount="1234.56",
                balance="1234.56",
                issue_date="2026-02-01",
                due_date="2026-03-03",
                tags="",
                language=language,
            )
        ],
        header=[*HEADER, "language"],
    )
    now = runtime.clock.now()
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(ledger), now)
        run = run_plan(session, PlanRules.from_settings(runtime.settings), TODAY, now, False)
        assert [(i.step.key, i.channel) for i in run.plan.items] == [("plus7", "email")]
    with runtime.sessions() as session:
        reminder = session.scalars(select(Reminder)).one()
        session.expunge(reminder)
    return reminder


@pytest.mark.parametrize(
    ("language", "subject", "amount", "day", "words"),
    [
        (
            "es",
            "Seguimiento de la factura INV-1",
            "1.234,56\u00a0€",
            "3 de marzo de 2026",
            "Buenos días",
        ),
        ("de", "Kurze Nachfrage zu Rechnung INV-1", "1.234,56\u00a0€", "3. März 2026", "Guten Tag"),
        ("fr", "Suivi de la facture INV-1", f"1{NNBSP}234,56{NBSP}€", "3 mars 2026", "Bonjour"),
        ("fr-CA", "Suivi de la facture INV-1", f"1{NBSP}234,56{NBSP}€", "3 mars 2026", "Bonjour"),
    ],
)
def test_a_customers_reminder_is_written_in_their_language_with_its_formats(
    runtime: Runtime,
    tmp_path: Path,
    language: str,
    subject: str,
    amount: str,
    day: str,
    words: str,
) -> None:
    reminder = plan_one(runtime, tmp_path, language)
    assert reminder.language == language
    assert reminder.subject == subject
    for body in (reminder.body_text or "", reminder.body_html or ""):
        assert amount in body and day in body and words in body
    assert f'<html lang="{language.split("-")[0]}">' in (reminder.body_html or "")
    assert "€1,234.56" not in (reminder.body_text or "")


def test_a_language_the_playbook_is_not_written_in_falls_back_to_english(
    runtime: Runtime, tmp_path: Path
) -> None:
    reminder = plan_one(runtime, tmp_path, "pt")
    assert reminder.language is None
    assert reminder.subject == "Checking in on invoice INV-1"
    assert "€1,234.56" in (reminder.body_text or "")
    assert "March 3, 2026" in (reminder.body_text or "")


FORBIDDEN = [
    ("es", "Si no paga, emprenderemos acciones legales.", "legal action"),
    ("es", "Pasaremos su expediente a una agencia de cobros.", "collection agencies"),
    ("es", "Le incluiremos en el fichero de morosos.", "credit reporting"),
    ("es", "Es su último aviso.", "threats"),
    ("es", "Es usted un moroso.", "shaming"),
    ("fr", "Nous engagerons des poursuites judiciaires.", "legal action"),
    ("fr", "Votre dossier sera transmis à une société de recouvrement.", "collection agencies"),
    ("fr", "Nous devrons suspendre votre service.", "suspension of service"),
    ("fr", "Des pénalités de retard s'appliqueront.", "fees or penalties"),
    ("fr", "Les mauvais payeurs comme vous...", "shaming"),
    ("de", "Andernfalls leiten wir rechtliche Schritte ein.", "legal action"),
    ("de", "Wir übergeben die Forderung an ein Inkassobüro.", "collection agencies"),
    ("de", "Wir melden dies der SCHUFA.", "credit reporting"),
    ("de", "Dies ist die letzte Mahnung.", "threats"),
    ("de", "Säumige Zahler wie Sie...", "shaming"),
    ("en", "Deadbeat customers get this.", "shaming"),
]


@pytest.mark.parametrize(("language", "text", "kind"), FORBIDDEN)
def test_the_linter_refuses_each_languages_threats_and_shaming(
    language: str, text: str, kind: str
) -> None:
    assert any(found.startswith(kind) for found in forbidden_phrases(text, language=language))
    # a text of unknown language is read in every language the linter knows
    assert any(found.startswith(kind) for found in forbidden_phrases(text))
    message = Rendered(subject=text, text="", html="", sms="")
    assert any(kind in problem for problem in lint_message(message, language))


def test_the_bundled_translations_carry_no_forbidden_phrase_and_their_opt_out_lines() -> None:
    bundle = load_bundle()
    renderer = Renderer(bundle.templates)
    for language in ("es", "fr", "de"):
        for situation, context in sample_contexts(7, language):
            message = renderer.render("polite", context, language=language)
            assert lint_message(message, language) == [], situation
            # Without its language the Spanish opt-out line is not the English one
            if language == "es":
                english_only = lint_message(message, "en")
                assert "text body: has no opt-out line (e.g. how to stop these emails)" in (
                    english_only
                )


def test_playbook_check_renders_and_lints_every_step_in_all_four_languages() -> None:
    bundle = load_bundle()
    assert bundle.languages == ["de", "es", "fr"]
    results = check_bundle(bundle)
    reminding = [r for r in results if r.template is not None]
    assert reminding and all(r.languages == ["de", "es", "fr"] for r in reminding)
    assert all(r.ok for r in results), [r.problems for r in results if not r.ok]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copy(BUNDLED, tmp_path / "playbook.yml")
    shutil.copytree(BUNDLED.parent / "templates", tmp_path / "templates")
    return tmp_path / "playbook.yml"


def test_a_forbidden_phrase_in_one_translation_is_caught_by_playbook_check(copy: Path) -> None:
    sms = copy.parent / "templates" / "polite" / "de" / "sms.txt.j2"
    sms.write_text(sms.read_text().replace("Fragen?", "Sonst droht ein Inkassoverfahren."))
    problems = [p for r in check_bundle(load_bundle(copy)) for p in r.problems]
    assert problems and all(p.startswith("[de] ") for p in problems)
    assert any("collection agencies ('Inkassoverfahren')" in p for p in problems)


def test_a_translation_that_drops_the_amount_or_the_payment_offer_is_caught(copy: Path) -> None:
    text = copy.parent / "templates" / "due_today" / "fr" / "body.txt.j2"
    source = text.read_text()
    text.write_text(
        source.replace("{{ payment_link }}", "notre site").replace("nos coordonnées bancaires", "")
    )
    problems = [p for r in check_bundle(load_bundle(copy)) for p in r.problems]
    assert any(
        "[fr] one invoice with a link: text body: has no payment link and does not offer" in p
        for p in problems
    )
    assert any(
        "[fr] several invoices, two currencies, no link: text body: has no payment link" in p
        for p in problems
    )


def test_the_business_named_in_english_must_be_named_in_each_translation() -> None:
    bundle = load_bundle()
    renderer = Renderer(bundle.templates)
    _situation, context = sample_contexts(0, "es")[0]
    message = renderer.render("due_today", context, language="es")
    assert missing_contents(message, context, "es") == []
    unsigned = Rendered(
        message.subject,
        message.text.replace("Brightwater Supply Co.", "nosotros"),
        message.html,
        message.sms,
    )
    assert missing_contents(unsigned, context, "es") == [
        "text body: does not say 'Brightwater Supply Co.'"
    ]


def test_a_language_folder_must_hold_every_part_and_be_named_by_a_tag(copy: Path) -> None:
    templates = copy.parent / "templates"
    (templates / "polite" / "es" / "sms.txt.j2").unlink()
    (templates / "firm" / "Spanish").mkdir()
    with pytest.raises(PlaybookError) as caught:
        load_bundle(copy)
    message = str(caught.value)
    assert "template 'polite' in language 'es' has no" in message
    assert "Spanish: not a language folder; name it by a language tag such as es" in message


def test_the_plan_card_of_a_spanish_reminder_says_so(runtime: Runtime, tmp_path: Path) -> None:
    from bot.planning.posting import cards_for
    from integrations.slack_blocks import reminder_blocks

    reminder = plan_one(runtime, tmp_path, "es")
    with runtime.sessions() as session:
        (card,) = cards_for(session, [session.get(Reminder, reminder.id)], "America/New_York")
    assert card.language == "es"
    fields = [f["text"] for f in reminder_blocks(card)[0]["fields"]]
    assert "*Language*\nSpanish" in fields


def test_a_phrase_broken_over_lines_or_in_capitals_is_still_caught() -> None:
    text = "Le transmettrons à une SOCIÉTÉ DE\n   RECOUVREMENT, sans\nquoi..."
    found = forbidden_phrases(text, language="fr")
    assert any(f.startswith("collection agencies") for f in found)
    assert any(f.startswith("threats") for f in found)


def test_playbook_check_says_which_languages_it_checked(cli: Any) -> None:
    result = cli("playbook", "check")
    assert result.code == 0
    assert "Checked in English and in German, Spanish, French." in result.stdout


def test_the_sample_ledgers_berlin_customer_reads_german() -> None:
    from bot.ledger.sample import sample_rows

    languages = {(r["customer_name"], r["language"]) for r in sample_rows(TODAY)}
    assert ("Nordlicht Messebau GmbH", "de") in languages
    assert {language for _, language in languages} == {"", "de"}


def test_a_british_reader_gets_the_english_text_with_british_dates(
    runtime: Runtime, tmp_path: Path
) -> None:
    reminder = plan_one(runtime, tmp_path, "en-GB")
    assert reminder.language == "en-GB"
    assert reminder.subject == "Checking in on invoice INV-1"
    assert "3 March 2026" in (reminder.body_text or "")
    assert "€1,234.56" in (reminder.body_text or "")
