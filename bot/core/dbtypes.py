"""Column types that keep money exact and time in UTC on every database we run on."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Numeric
from sqlalchemy.types import TypeDecorator, TypeEngine

from bot.core.clock import as_utc
from bot.core.money import STORAGE_PLACES

_SCALE = Decimal(10) ** STORAGE_PLACES
_UNIT = Decimal(1).scaleb(-STORAGE_PLACES)
# Multiplies a stored count of 1/10,000ths by 0.0001 exactly: any rounding would raise.
_EXACT = Context(prec=28, traps=[Inexact, InvalidOperation, Overflow])


class Amount(TypeDecorator[Decimal]):
    """A money amount as Decimal, exact everywhere.

    PostgreSQL stores NUMERIC(18, 4). SQLite has no exact decimal type (NUMERIC there is a float),
    so the amount is stored as an integer count of 1/10,000ths; SUM() stays exact and the result
    comes back as a Decimal through this same type.
    """

    impl = Numeric(18, STORAGE_PLACES)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(18, STORAGE_PLACES, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            if isinstance(value, int):
                value = Decimal(value)
            else:
                raise TypeError(f"money must be Decimal, got {type(value).__name__}")
        # Refused on both databases alike: PostgreSQL's NUMERIC would round it silently.
        scaled = value * _SCALE
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {STORAGE_PLACES} decimal places")
        if dialect.name == "sqlite":
            return int(scaled)
        return value

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        # What process_result_value gives, by one C call per value instead of three Python ones
        # (a plan reads about 100,000 amounts): the same Decimal, with four places.
        multiply, unit = _EXACT.multiply, _UNIT

        def read(value: Any) -> Decimal | None:
            return None if value is None else multiply(value, unit)

        return read

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            # The count of 1/10,000ths with its exponent moved: exact, and always four places.
            return Decimal(int(value)).scaleb(-STORAGE_PLACES)
        return Decimal(value)


class UTCDateTime(TypeDecorator[datetime]):
    """An instant: accepts only timezone-aware datetimes, stores UTC, returns aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = as_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
