"""What the ledger CSV and the payments CSV read the same way: opening the file, the header and the
rows (numbered as a spreadsheet shows them: the header is row 1), the field checks they share, and
how a row's validation errors read (`row N, column: what is wrong`). Every cell is held to what any
ledger record may hold (integrations.base.ledger): no control characters or bidirectional
overrides, and dates within the years arbot accepts.

The email and phone checks also serve the accounting sources, which meet the same addresses and
numbers in their contact records.
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache, lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

from bot.core.errors import UserError, ValidationFailed
from bot.core.money import is_currency, minor_units
from integrations.base.ledger import date_problem, text_problem

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# reserved domains no address may use, each with a dot before it: a domain is one of them, or
# under one, when it ends with one after a dot is put before it
_SPECIAL_USE = tuple(f".{name}" for name in SPECIAL_USE_DOMAIN_NAMES)


# --- Cells -------------------------------------------------------------------------------------
# Each check takes a cell's trimmed, non-empty text and returns its value, or raises ValueError
# whose text is the problem (`row N, column: <that text>`). A cell's text is first held to what
# any ledger text may hold (`text_problem`: no control character or bidirectional override).


def at_most(limit: int) -> Callable[[str], str]:
    """The check of a text column that holds at most `limit` characters."""

    def check(text: str) -> str:
        if len(text) > limit:
            raise ValueError(f"is {len(text)} characters long; at most {limit} fit")
        return text

    return check


def iso_date(text: str) -> date:
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(f"{text!r} is not an ISO date (YYYY-MM-DD, e.g. 2026-03-16)")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a real date") from None
    problem = date_problem(day)
    if problem:
        raise ValueError(problem)
    return day


def currency_code(text: str) -> str:
    code = text.upper()
    if not is_currency(code):
        raise ValueError(f"{code!r} is not an ISO 4217 currency code (e.g. USD, EUR, GBP)")
    return code


# An address in the plainest form: a dot-atom of ASCII before the @, and lower-case ASCII labels
# ending in a top-level domain of letters after it. email_validator accepts every such address
# that passes `_plain_email` and gives it back unchanged (tests/integrations/test_csv_common.py
# holds it to that), so it is not asked: it costs about 50 µs an address, most of a ledger
# file's reading.
_PLAIN_EMAIL = re.compile(
    r"([a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~]+(?:\.[a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~]+)*)"
    r"@((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})"
)
_MAILBOX_NAMES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)  # lower-cased by email_validator


def _plain_email(text: str) -> bool:
    """Whether `text` is an address email_validator would accept and give back as it is."""
    found = _PLAIN_EMAIL.fullmatch(text)
    if found is None or len(text) > 254:
        return False
    local, domain = found.groups()
    if len(local) > 64 or len(domain) > 253 or "--" in domain:
        return False  # too long, or Punycode and its look-alikes: email_validator decides
    if local.lower() in _MAILBOX_NAMES:
        return False
    return not f".{domain}".endswith(_SPECIAL_USE)


@lru_cache(maxsize=65536)
def normalise_email(text: str) -> str:
    """The address in its normalised form, as mail is sent to it: an internationalised domain in
    its ASCII (IDNA) form (`ana@bücher.de` → `ana@xn--bcher-kva.de`). ValueError saying why when
    it is not an address, or not one arbot can send to: letters outside ASCII before the @ need
    a mail server that takes them (SMTPUTF8), which few do."""
    if _plain_email(text):
        return text
    try:
        found = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"{text!r} is not a valid email address: {exc}") from None
    if found.ascii_email is None:
        outside = list(dict.fromkeys(repr(c) for c in found.local_part if not c.isascii()))
        raise ValueError(
            f"{text!r} cannot be sent to: {', '.join(outside)} before the @ "
            f"{'is' if len(outside) == 1 else 'are'} not ASCII, which most mail servers refuse; "
            "ask the customer for an address without it"
        )
    return found.ascii_email


@lru_cache(maxsize=65536)
def normalise_phone(text: str, region: str) -> str:
    """The number in E.164, read as dialled in `region` unless it starts with +; ValueError
    saying why when it is not a valid number."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{text!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{text!r} is not a valid phone number (write it as +15551234567)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- Rows --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    """A column a row is read by: its check, and what a cell that is empty or that a short row
    lacks reads as. A required column reads neither: each is a problem of the row."""

    name: str
    check: Callable[[str], Any]
    required: bool = True
    empty: Any = None
    repeats: bool = True  # its values recur from row to row: each is checked once and remembered
    # An earlier column with the same check, read apart with it, whose text this one's often is
    # (a balance beside its amount): the same text then reads as the value already read.
    like: str | None = None


_MISSING = "is required but the column is empty"
_EMPTY = "is required but empty"


class RowChecker:
    """Reads rows cell by cell against their columns; a row with a problem has them listed in the
    columns' order. A file repeats most of its values (dates, currencies, a customer's name on
    each of its invoices), so each column remembers what each text it met read as, and a value is
    checked once per file however many rows repeat it. Columns whose cells repeat together (a
    customer's, on each of its invoices) can be named `together`: their cells are then looked up
    as one."""

    def __init__(self, columns: Sequence[Column], together: Sequence[str] = ()) -> None:
        self.columns = tuple(columns)
        self._together = tuple(c for c in self.columns if c.name in together)
        self._apart = tuple(c for c in self.columns if c.name not in together)
        self._together_names = tuple(c.name for c in self._together)
        self._apart_names = tuple(c.name for c in self._apart)
        self._read: dict[str, dict[str | None, tuple[bool, Any]]] = {
            c.name: {} for c in self.columns
        }
        # each column with what it remembers, or None for a column whose values seldom recur
        # (paired once here: a Column's hash is worked out anew at each lookup)
        self._together_cells = _quiet_reader(
            tuple(self._memo_of(c) for c in self._together), self._together_names
        )
        self._apart_cells = _quiet_reader(
            tuple(self._memo_of(c) for c in self._apart), self._apart_names
        )
        self._groups: dict[tuple[str | None, ...], list[Any] | None] = {}

    def _memo_of(self, column: Column) -> tuple[Column, dict[str | None, tuple[bool, Any]] | None]:
        return column, self._read[column.name] if column.repeats else None

    @property
    def order(self) -> tuple[str, ...]:
        """The columns in the order `read` gives their values: those read together first."""
        return self._together_names + self._apart_names

    def read(self, row_number: int, raw: dict[str, str], problems: list[str]) -> RowValues | None:
        """The row's values, or None after adding its problems (each as `row N, column: what is
        wrong`, in the columns' order) to `problems`."""
        return self._values(
            row_number,
            tuple(map(raw.get, self._together_names)),
            tuple(map(raw.get, self._apart_names)),
            raw.get,
            problems,
        )

    def by_position(
        self, header: Sequence[str]
    ) -> Callable[[int, list[Any], list[str]], RowValues | None]:
        """`read` for rows given as lists of cells in the order of the file's `header` (as
        `read_cells` gives them; the list is taken over and lengthened): a cell a short row lacks,
        or of a column the header lacks, reads as None. The cells are picked out of the list in
        one step for the columns read together and one for the others, without a dict per row."""
        absent = len(header)  # each row gets a None there
        width = absent + 1
        position = {name: index for index, name in reversed(list(enumerate(header)))}

        def picker(names: Sequence[str]) -> Callable[[list[str | None]], tuple[str | None, ...]]:
            indexes = [position.get(name, absent) for name in names]
            if len(indexes) == 1:
                return lambda values: (values[indexes[0]],)
            if not indexes:
                return lambda values: ()
            pick: Callable[[list[str | None]], tuple[str | None, ...]] = itemgetter(*indexes)
            return pick

        together_of, apart_of = picker(self._together_names), picker(self._apart_names)
        groups, together_cells, apart_cells = self._groups, self._together_cells, self._apart_cells

        # `_values` written out: it runs once for each of a file's rows.
        def read(row_number: int, values: list[Any], problems: list[str]) -> RowValues | None:
            if len(values) == absent:
                values.append(None)
            else:
                values.extend([None] * (width - len(values)))
            cells = together_of(values)
            together = groups.get(cells, _UNSEEN)
            if together is _UNSEEN:
                together = groups[cells] = together_cells(cells)
            apart = apart_cells(apart_of(values))
            if together is None or apart is None:
                self._problems(
                    row_number, lambda name: values[position.get(name, absent)], problems
                )
                return None
            return RowValues(together, apart)

        return read

    def _values(
        self,
        row_number: int,
        together_cells: tuple[str | None, ...],
        apart_cells: tuple[str | None, ...],
        cell_of: Callable[[str], str | None],
        problems: list[str],
    ) -> RowValues | None:
        together = self._groups.get(together_cells, _UNSEEN)
        if together is _UNSEEN:
            together = self._groups[together_cells] = self._together_cells(together_cells)
        apart = self._apart_cells(apart_cells)
        if together is None or apart is None:
            self._problems(row_number, cell_of, problems)
            return None
        return RowValues(together, apart)

    def _problems(
        self, row_number: int, cell_of: Callable[[str], str | None], problems: list[str]
    ) -> None:
        """Add each problem of the row's cells to `problems`, in the columns' order."""
        for column in self.columns:
            good, value = self._cell(column, cell_of(column.name))
            if not good:
                problems.append(f"row {row_number}, {column.name}: {value}")

    def _cell(self, column: Column, cell: str | None) -> tuple[bool, Any]:
        seen = self._read[column.name]
        known = seen.get(cell)
        if known is None:
            known = seen[cell] = _checked(column, cell)
        return known


_Memos = tuple[tuple[Column, dict[str | None, tuple[bool, Any]] | None], ...]


def _quiet_reader(
    memos: _Memos, order: Sequence[str]
) -> Callable[[tuple[str | None, ...]], list[Any] | None]:
    """One function giving the cells' values (a cell for each column of `memos`, in order), or
    None when one has a problem: a column that remembers looks its cell up first, a column
    `like` an earlier one of `order` whose cell has the same text takes its value, and a cell of
    any other column that is printable and not empty is checked straight away. Written out as
    one function, since it runs for each of a file's rows."""
    names: dict[str, Any] = {"checked": _checked}
    lines = ["def read(cells):", f"    ({''.join(f'c{i}, ' for i in range(len(memos)))}) = cells"]
    for index, (column, seen) in enumerate(memos):
        names[f"column{index}"] = column
        names[f"check{index}"] = column.check
        cell, value = f"c{index}", f"v{index}"
        earlier = order.index(column.like) if column.like in order[:index] else None
        if earlier is not None and memos[earlier][0].check is column.check:
            lines += [
                f"    if {cell} is not None and {cell} == c{earlier}:",
                f"        {value} = v{earlier}",
                "    else:",
            ]
            indent = "    "
        else:
            indent = ""
        if seen is not None:
            names[f"seen{index}"] = seen
            lines += [
                indent + line
                for line in (
                    f"    known = seen{index}.get({cell})",
                    "    if known is None:",
                    f"        known = seen{index}[{cell}] = checked(column{index}, {cell})",
                    "    if not known[0]:",
                    "        return None",
                    f"    {value} = known[1]",
                )
            ]
            continue
        names[f"empty{index}"] = column.empty
        lines += [
            indent + line
            for line in (
                f"    if {cell} is None:",
                f"        {value} = empty{index}" if not column.required else "        return None",
                "    elif (text := " + cell + ".strip()) and text.isprintable():",
                "        try:",
                f"            {value} = check{index}(text)",
                "        except ValueError:",
                "            return None",
                "    else:",
                f"        known = checked(column{index}, {cell})",
                "        if not known[0]:",
                "            return None",
                f"        {value} = known[1]",
            )
        ]
    lines.append(f"    return [{', '.join(f'v{i}' for i in range(len(memos)))}]")
    exec("\n".join(lines), names)  # the text above: it names only these columns' checks
    # Taken out of the names it runs with: left there, the function and its globals would hold
    # each other, and with them every value the columns remember (a whole file's worth), until
    # the cycle collector found them.
    read: Callable[[tuple[str | None, ...]], list[Any] | None] = names.pop("read")
    return read


class RowValues(NamedTuple):
    """A row's values: those of the columns read together (the same list for every row with the
    same cells there; not to be changed), then the others', each in the columns' order."""

    together: list[Any]
    apart: list[Any]


_UNSEEN: Any = object()


def _checked(column: Column, cell: str | None) -> tuple[bool, Any]:
    """(True, the cell's value) or (False, what is wrong with it)."""
    if cell is None:
        return (False, _MISSING) if column.required else (True, column.empty)
    try:
        text = cell.strip()
        if not text.isprintable():  # the usual case is printable: text_problem has no say
            problem = text_problem(text)
            if problem:
                return False, problem
        if not text:
            return (False, _EMPTY) if column.required else (True, column.empty)
        return True, column.check(text)
    except ValueError as exc:
        return False, str(exc)


@cache
def _minor_units(currency: str) -> int:
    return minor_units(currency)


def excess_places(row_number: int, column: str, value: Decimal, currency: str) -> str | None:
    """The problem with an amount written with more decimal places than its currency uses."""
    places = _minor_units(currency)
    if -value.as_tuple().exponent > places:  # type: ignore[operator]
        return (
            f"row {row_number}, {column}: {value} has more decimal places than "
            f"{currency} uses ({places})"
        )
    return None


@contextmanager
def cycles_collected_after() -> Iterator[None]:
    """Hold off Python's cycle collector while a file's rows are read: they form no cycles, and
    with 100,000 of them alive every collection walks them all again, a third of the reading."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def open_csv(path: Path) -> Any:
    """The file opened for the csv module (a UTF-8 byte order mark is skipped)."""
    try:
        return path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a CSV file") from None
    except PermissionError:
        raise UserError(f"{path}: cannot be read (permission denied)") from None


def read_rows(
    path: Path,
    required_columns: Sequence[str],
    problems: list[str],
    *,
    file_kind: str | None = None,
    fill_short_rows: bool = False,
) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number, column -> value) for each row that is not blank, columns named by the header
    (trimmed, lower case): `read_cells`, each row as a dict. A row with fewer values than the
    header lacks the last columns, or with `fill_short_rows` has them empty."""
    header: list[str] = []
    for index, values in read_cells(
        path, required_columns, problems, file_kind=file_kind, on_header=header.extend
    ):
        if fill_short_rows:
            values = values + [""] * (len(header) - len(values))
        yield index, dict(zip(header, values, strict=False))


def read_cells(
    path: Path,
    required_columns: Sequence[str],
    problems: list[str],
    *,
    file_kind: str | None = None,
    on_header: Callable[[list[str]], None] = lambda columns: None,
) -> Iterator[tuple[int, list[str]]]:
    """(row number, its values) for each row that is not blank, after `on_header` has been given
    the header's columns (trimmed, lower case). A header that lacks a required column or repeats
    one, or a file that is not UTF-8 CSV, raises UserError (naming the row the csv module stopped
    at, with the problems found before it); a row with more values than the header has columns is
    added to `problems` and skipped; a row may have fewer. `file_kind` ("payments") lists the
    required columns in the missing-column message."""
    index = 0  # the row last read
    with open_csv(path) as handle:
        try:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise UserError(f"{path}: the file is empty; expected a header row")
            if not "".join(header).strip():
                if all(not "".join(values).strip() for values in reader):
                    raise UserError(
                        f"{path}: the file is empty (only blank lines); expected a header row"
                    )
                raise UserError(
                    f"{path}: row 1 (header): is blank; the column names must be on the first row"
                )
            index = 1
            columns = _checked_header(path, header, required_columns, file_kind)
            on_header(columns)
            width = len(columns)
            for index, values in enumerate(reader, start=2):
                # blank: no cell but spaces (the usual row is known by its first cell)
                if not (values and values[0].strip()) and not "".join(values).strip():
                    continue
                if len(values) > width:
                    problems.append(
                        f"row {index}: {len(values)} values but the header has {width} columns"
                    )
                    continue
                yield index, values
        except UnicodeDecodeError:
            # The error's offset is within the block of the file being decoded, and the rows
            # read so far stop short of that block: the file is read again to say where.
            raise UserError(f"{path}: {_where_not_utf8(path)}") from None
        except csv.Error as exc:
            raise ValidationFailed(
                str(path), [*problems, _unreadable_row(index + 1, exc)]
            ) from None


def _other_separator(
    header: list[str], required_columns: Sequence[str], missing: int
) -> str | None:
    """How a header that lacks required columns separates its values, when that is not a comma
    (a spreadsheet set to a language that writes decimal commas saves `;`): the separator that
    finds more of the required columns than commas did, as the message names it."""
    line = ",".join(header)
    found_with_commas = len(required_columns) - missing
    for separator, name in ((";", "';'"), ("\t", "tabs"), ("|", "'|'")):
        columns = {cell.strip().strip('"').lower() for cell in line.split(separator)}
        if sum(1 for column in required_columns if column in columns) > found_with_commas:
            return name
    return None


def _where_not_utf8(path: Path) -> str:
    """`row N, column: is not UTF-8 text (byte 0xE9 at offset 188,771, …)`: the first byte of the
    file that is not UTF-8, by its row (as a spreadsheet numbers them, a quoted value across lines
    being one row), its column and its offset in the file."""
    data = path.read_bytes()
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = start + exc.start
    else:  # the file changed since it was read
        return "is not UTF-8 text; save it as CSV UTF-8"
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "is saved as UTF-16, not UTF-8 text; save it as CSV UTF-8"
    byte = data[offset]
    as_latin = bytes([byte]).decode("cp1252", errors="replace")
    hint = f", {as_latin!r} in Latin-1 or Windows-1252" if as_latin.isprintable() else ""
    what = f"is not UTF-8 text (byte 0x{byte:02X} at offset {offset:,}{hint}); save it as CSV UTF-8"
    # The rows before the byte, and the row it is in up to it (the "x" makes that row one even
    # when the byte begins it).
    before = io.StringIO(data[start:offset].decode("utf-8") + "x", newline="")
    header: list[str] = []
    row_number, cells = 0, list[str]()
    try:
        for row_number, cells in enumerate(csv.reader(before), start=1):
            if row_number == 1:
                header = [name.strip().lower() for name in cells]
    except csv.Error:  # a row before it is not CSV either: say what is known
        return what
    if row_number <= 1:
        return f"row 1 (header): {what}"
    column = header[len(cells) - 1] if len(cells) <= len(header) else ""
    return f"row {row_number}, {column}: {what}" if column else f"row {row_number}: {what}"


def _unreadable_row(row_number: int, exc: csv.Error) -> str:
    """Why the csv module stopped at `row_number`; the rows after it are not read."""
    limit = csv.field_size_limit()
    if f"({limit})" in str(exc):
        return (
            f"row {row_number}: a value is longer than {limit:,} characters, far more than any "
            "ledger value; look for a quote that opens on this row and never closes "
            "(the rows after it were not read)"
        )
    return f"row {row_number}: not readable as CSV: {exc} (the rows after it were not read)"


def _checked_header(
    path: Path, header: list[str], required_columns: Sequence[str], file_kind: str | None
) -> list[str]:
    columns = [name.strip().lower() for name in header]
    missing = [name for name in required_columns if name not in columns]
    if missing:
        separator = _other_separator(header, required_columns, len(missing))
        if separator is not None:
            raise UserError(
                f"{path}: row 1 (header): the file seems to use {separator} between values; "
                "arbot needs commas (save it as CSV UTF-8, comma-separated)"
            )
        listed = f" (a {file_kind} file has {', '.join(required_columns)})" if file_kind else ""
        raise UserError(
            f"{path}: row 1 (header): missing required column"
            f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}{listed}"
        )
    repeated = sorted({name for name in columns if name and columns.count(name) > 1})
    if repeated:
        raise UserError(f"{path}: row 1 (header): column {', '.join(repeated)} appears twice")
    return columns
