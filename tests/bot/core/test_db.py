"""The databases: exact money and UTC time on both, SQLite's pragmas, migrations up and down."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, inspect, select, text

from bot.core import migrate
from bot.core.db import _by_kind, make_engine, writing_factory
from bot.core.errors import UserError
from bot.core.models import Base, Customer, Invoice
from bot.core.runtime import Runtime


def _customer(runtime: Runtime) -> int:
    now = runtime.clock.now()
    with runtime.writing() as session:
        customer = Customer(
            source="csv", external_id="C-1", name="Acme", created_at=now, updated_at=now
        )
        session.add(customer)
        session.flush()
        return customer.id


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    amounts=st.lists(st.decimals(min_value=0, max_value=10**9, places=4), min_size=1, max_size=8)
)
def test_money_round_trips_and_sums_exactly(runtime: Runtime, amounts: list[Decimal]) -> None:
    customer_id = _customer(runtime) if not hasattr(runtime, "_cid") else runtime._cid  # type: ignore[attr-defined]
    runtime._cid = customer_id  # type: ignore[attr-defined]
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.execute(text("DELETE FROM invoices"))
        for n, amount in enumerate(amounts):
            session.add(
                Invoice(
                    customer_id=customer_id,
                    source="csv",
                    external_id=str(n),
                    number=str(n),
                    issue_date=date(2026, 1, 1),
                    due_date=date(2026, 2, 1),
                    currency="USD",
                    total=amount,
                    balance=amount,
                    created_at=now,
                    updated_at=now,
                )
            )
    with runtime.sessions() as session:
        stored = session.scalars(select(Invoice.balance).order_by(Invoice.id)).all()
        total = session.scalar(select(func.sum(Invoice.balance)))
    assert stored == amounts
    assert isinstance(total, Decimal)
    assert total == sum(amounts, Decimal(0))


def test_an_amount_finer_than_the_storage_is_refused_not_rounded(runtime: Runtime) -> None:
    customer_id = _customer(runtime)
    now = runtime.clock.now()
    with (
        pytest.raises(Exception, match=r"1\.00005 has more than 4 decimal places"),
        runtime.writing() as session,
    ):
        session.add(
            Invoice(
                customer_id=customer_id,
                source="csv",
                external_id="1",
                number="1",
                issue_date=date(2026, 1, 1),
                due_date=date(2026, 2, 1),
                currency="USD",
                total=Decimal("1.00005"),
                balance=Decimal("1.00005"),
                created_at=now,
                updated_at=now,
            )
        )
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Invoice)) == 0


def test_instants_must_carry_a_timezone_and_come_back_in_utc(runtime: Runtime) -> None:
    new_york = timezone(timedelta(hours=-4))
    with runtime.writing() as session:
        session.add(
            Customer(
                source="csv",
                external_id="C-1",
                name="Acme",
                created_at=datetime(2026, 3, 16, 10, tzinfo=new_york),
                updated_at=datetime(2026, 3, 16, 14, tzinfo=UTC),
            )
        )
    with runtime.sessions() as session:
        created = session.scalars(select(Customer.created_at)).one()
    assert created == datetime(2026, 3, 16, 14, tzinfo=UTC)
    assert created.tzinfo == UTC
    with pytest.raises(Exception, match="naive datetime"), runtime.writing() as session:
        session.add(
            Customer(
                source="csv",
                external_id="C-2",
                name="Naive",
                created_at=datetime(2026, 3, 16),
                updated_at=datetime(2026, 3, 16),
            )
        )


def test_sqlite_runs_with_wal_a_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_a_contending_sqlite_writer_waits_instead_of_failing(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    migrate.upgrade(engine)
    writes = writing_factory(engine)
    holding = threading.Event()
    release = threading.Event()
    now = datetime(2026, 3, 16, tzinfo=UTC)

    def first_writer() -> None:
        with writes.begin() as session:
            session.add(
                Customer(source="csv", external_id="A", name="A", created_at=now, updated_at=now)
            )
            session.flush()
            holding.set()
            release.wait(timeout=10)

    thread = threading.Thread(target=first_writer)
    thread.start()
    assert holding.wait(timeout=10)
    threading.Timer(0.3, release.set).start()  # the first writer commits while the second waits
    with writes.begin() as session:  # would raise "database is locked" without the busy timeout
        session.add(
            Customer(source="csv", external_id="B", name="B", created_at=now, updated_at=now)
        )
    thread.join(timeout=10)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM customers").scalar() == 2
    engine.dispose()


def test_foreign_keys_are_enforced(runtime: Runtime) -> None:
    now = runtime.clock.now()
    with pytest.raises(Exception, match=r"(?i)foreign key"), runtime.writing() as session:
        session.add(
            Invoice(
                customer_id=999,
                source="csv",
                external_id="X",
                number="X",
                issue_date=date(2026, 1, 1),
                due_date=date(2026, 2, 1),
                currency="USD",
                total=Decimal(1),
                balance=Decimal(1),
                created_at=now,
                updated_at=now,
            )
        )


def test_the_migrated_schema_has_every_table_of_the_model(runtime: Runtime) -> None:
    tables = set(inspect(runtime.engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    assert {
        "customers",
        "contacts",
        "invoices",
        "payments",
        "payment_allocations",
        "reminders",
        "events",
        "inbound_messages",
        "escalations",
        "playbook_versions",
        "edit_examples",
    } <= tables


def test_migrations_go_down_and_up_again_and_upgrade_twice_is_a_no_op(tmp_path: Path) -> None:
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    assert migrate.upgrade(engine) is True
    assert migrate.upgrade(engine) is False
    config = migrate.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert migrate.current_revision(engine) is None
    assert migrate.upgrade(engine) is True
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def test_db_upgrade_command_reports_what_it_did(
    cli: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    first = cli("db", "upgrade")  # type: ignore[operator]
    assert first.code == 0 and "Database upgraded from empty to" in first.stdout
    second = cli("db", "upgrade")  # type: ignore[operator]
    assert "already up to date" in second.stdout


def test_an_unsupported_database_url_is_a_user_error() -> None:
    with pytest.raises(UserError, match="mysql is not supported"):
        make_engine("mysql://root@localhost/db")
    with pytest.raises(UserError, match="is not a database URL"):
        make_engine("not a url")


def test_a_database_that_cannot_be_opened_says_which_setting_to_fix(
    cli: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:////nonexistent-folder/x/arbot.db")
    result = cli("aging")  # type: ignore[operator]
    assert result.code == 1
    assert "cannot open the database at DATABASE_URL" in result.stderr


def test_postgres_urls_use_psycopg_3() -> None:
    from bot.core.db import normalise_url

    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///a.db") == "sqlite:///a.db"


@pytest.mark.postgres
def test_replicas_migrating_an_empty_postgres_schema_at_once_all_succeed() -> None:
    import uuid

    from sqlalchemy import create_engine

    from tests.conftest import PG_SERVER, POSTGRES

    if not POSTGRES:
        pytest.skip("PostgreSQL does not answer")
    schema = f"arbot_race_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_SERVER)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    errors: list[BaseException] = []

    def start_replica() -> None:
        engine = make_engine(url)
        try:
            migrate.upgrade(engine)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)
        finally:
            engine.dispose()

    try:
        threads = [threading.Thread(target=start_replica) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        engine = make_engine(url)
        assert migrate.current_revision(engine) == migrate.head_revision()
        engine.dispose()
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_the_migrations_build_exactly_the_models_schema(runtime: Runtime) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with runtime.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_the_written_head_revision_is_the_newest_migration_script() -> None:
    assert migrate.head_revision() == migrate.HEAD_REVISION


def test_sqlite_engines_made_alike_share_compiled_statements_and_read_their_own_rows(
    tmp_path: Path,
) -> None:
    """A statement compiled for one database's engine is not compiled again for another's made
    the same way (each test's, each workspace's), and each still reads its own rows, with its
    types (an aware UTC time) handled as ever; an engine made with other options keeps its own."""
    from sqlalchemy.pool import NullPool

    from tests.support.migrated_sqlite import copy_migrated

    named = select(Customer.name, Customer.created_at).where(Customer.external_id == "C-SHARED")
    read = {}
    for name, stamp in (("Acme", datetime(2026, 3, 16, 9, tzinfo=UTC)), ("Beta", None)):
        copy_migrated(tmp_path / f"{name}.db")
        engine = make_engine(f"sqlite:///{tmp_path / name}.db")
        created = stamp or datetime(2026, 4, 1, 17, 30, tzinfo=UTC)
        with writing_factory(engine).begin() as session:
            session.add(
                Customer(
                    source="csv",
                    external_id="C-SHARED",
                    name=name,
                    created_at=created,
                    updated_at=created,
                )
            )
        with engine.connect() as connection:
            result = connection.execute(named)
            read[name] = (result.context.cache_hit == engine.dialect.CACHE_HIT, result.one())
        engine.dispose()

    assert read["Beta"][0], "the second engine compiled the statement again"
    assert read["Acme"][1] == ("Acme", datetime(2026, 3, 16, 9, tzinfo=UTC))
    assert read["Beta"][1] == ("Beta", datetime(2026, 4, 1, 17, 30, tzinfo=UTC))

    other = make_engine(f"sqlite:///{tmp_path / 'Acme.db'}", poolclass=NullPool)
    with other.connect() as connection:
        result = connection.execute(named)
        assert result.context.cache_hit == other.dialect.CACHE_MISS
        assert result.one() == read["Acme"][1]
    other.dispose()


def test_a_compiled_statements_key_of_another_shape_is_kept_as_it_is() -> None:
    """Should SQLAlchemy put something other than the dialect first, the key stays whole (its
    dialect somewhere in it keeps engines apart) rather than be merged with another's."""
    engine = make_engine("sqlite://")
    with engine.connect():
        dialect = engine.dialect
    assert _by_kind((dialect, "statement"))[0] == (type(dialect), dialect.server_version_info)
    for key in (("statement", dialect), "statement", ()):
        assert _by_kind(key) == key
    engine.dispose()
