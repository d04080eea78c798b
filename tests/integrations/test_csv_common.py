"""What both CSV readers share: an address in the plainest form is taken as written without asking
email_validator, and only when email_validator would give it back unchanged."""

from __future__ import annotations

import gc
import weakref

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given
from hypothesis import strategies as st

from integrations.csv_common import Column, RowChecker, _plain_email, normalise_email

LOCAL = "abcXYZ019_!#$%&'*+-/=?^`{|}~."
DOMAIN = "abcxyz019-.Aé"


def _validated(text: str) -> str | None:
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


@given(
    st.text(LOCAL + "@é ", min_size=1, max_size=70),
    st.text(DOMAIN, min_size=1, max_size=70),
    st.sampled_from(["example", "com", "c0m", "local", "test", "x", "ab", "invalid", "Com"]),
)
@example("a", "b", "local")
@example("Postmaster", "ridgeline", "example")
@example("a..b", "ridgeline", "example")
@example(".a", "ridgeline", "example")
@example("a", "xn--bcher-kva", "example")
@example("a", "ab--c", "example")
@example("a", "-ridgeline", "example")
@example("a", "ridgeline-", "example")
@example("a" * 65, "ridgeline", "example")
@example("a", "b" * 64, "example")
@example("a", "home.arpa", "example")
def test_a_plain_address_is_one_email_validator_gives_back_unchanged(
    local: str, domain: str, top: str
) -> None:
    address = f"{local}@{domain}.{top}"
    if _plain_email(address):
        assert _validated(address) == address


@pytest.mark.parametrize(
    "address",
    ["maria@ridgeline.example", "ap+billing@harbor-dental.co.uk", "Maria.Garcia@a1.example"],
)
def test_everyday_addresses_are_plain(address: str) -> None:
    assert _plain_email(address)
    assert normalise_email(address) == _validated(address) == address


@pytest.mark.parametrize(
    ("address", "normalised"),
    [
        ("maria@Ridgeline.EXAMPLE", "maria@ridgeline.example"),
        ("Postmaster@ridgeline.example", "postmaster@ridgeline.example"),
        # an internationalised domain in its ASCII (IDNA) form, which SMTP and headers carry
        ("maria@bücher.example", "maria@xn--bcher-kva.example"),
        ("maria@BÜCHER.example", "maria@xn--bcher-kva.example"),
        ("maria@xn--bcher-kva.example", "maria@xn--bcher-kva.example"),
    ],
)
def test_an_address_that_normalises_to_another_is_asked_of_email_validator(
    address: str, normalised: str
) -> None:
    assert not _plain_email(address)
    assert normalise_email(address) == normalised


@pytest.mark.parametrize(
    "address", ["maria@ridgeline.local", "maria@ridgeline", "maria..g@ridgeline.example"]
)
def test_an_address_email_validator_refuses_is_refused_with_its_reason(address: str) -> None:
    with pytest.raises(ValueError, match="is not a valid email address: "):
        normalise_email(address)


@pytest.mark.parametrize("address", ["josé@example.com", "maría@bücher.example"])
def test_an_address_with_letters_outside_ascii_before_the_at_is_refused_saying_so(
    address: str,
) -> None:
    with pytest.raises(ValueError) as refused:
        normalise_email(address)
    assert str(refused.value).startswith(f"{address!r} cannot be sent to: ")
    assert "before the @" in str(refused.value)


class _Value:
    """A value a check gives, which can be watched for being freed."""


def test_what_a_row_checker_remembers_is_freed_with_it_without_the_cycle_collector() -> None:
    made: list[weakref.ref[_Value]] = []

    def check(text: str) -> _Value:
        value = _Value()
        made.append(weakref.ref(value))
        return value

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        checker = RowChecker([Column("kind", check), Column("size", check)], together=["kind"])
        read = checker.by_position(["kind", "size"])
        assert read(2, ["a", "b"], []) is not None
        del checker, read
        assert len(made) == 2
        assert [ref() for ref in made] == [None, None]
    finally:
        if was_enabled:
            gc.enable()
