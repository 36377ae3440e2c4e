"""Building PostgresBackend from URLs: libpq's forms, sitq's options, and clear refusals."""

from __future__ import annotations

import pytest

from sitq.errors import ConfigurationError
from sitq.plugins import Plugins
from sitq_postgres import PostgresBackend


@pytest.mark.parametrize(
    ("url", "where"),
    [
        (
            "postgresql://app:secret@db.internal:6543/orders",
            "database 'orders' at db.internal:6543 as user 'app'",
        ),
        ("postgres://app@db/orders", "database 'orders' at db:5432 as user 'app'"),
        (
            "postgresql:///orders?host=/var/run/postgresql&user=app",
            "database 'orders' at /var/run/postgresql:5432 as user 'app'",
        ),
        (
            "postgresql://app@%2Fvar%2Frun%2FPostgreSQL/orders",
            "database 'orders' at /var/run/PostgreSQL:5432 as user 'app'",
        ),
    ],
)
def test_libpq_urls_name_the_database_but_never_the_password(url: str, where: str) -> None:
    backend = PostgresBackend.from_url(url)
    assert where in repr(backend)
    assert "secret" not in repr(backend)


def test_sitq_options_are_read_and_taken_out_of_what_asyncpg_sees() -> None:
    backend = PostgresBackend.from_url(
        "postgresql://app@db/orders?sslmode=require&schema=jobs&listen=false&pool_size=8&connect_timeout=3"
    )
    assert backend.schema == "jobs"
    assert repr(backend).endswith("schema='jobs', listen=False, pool_size=8)")
    assert backend._dsn == "postgresql://app@db/orders?sslmode=require"


def test_the_default_schema_is_sitq() -> None:
    assert PostgresBackend.from_url("postgresql://app@db/orders").schema == "sitq"


def test_an_unknown_option_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(
        ConfigurationError, match=r"unknown option 'shcema'.*schema, listen, pool_size"
    ) as error:
        PostgresBackend.from_url("postgresql://app:secret@db/orders?shcema=jobs")
    assert "secret" not in str(error.value)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("schema=Jobs", "schema name is lowercase"),
        ("schema=jobs;drop", "schema name is lowercase"),
        ("schema=" + "x" * 51, "at most 50 characters"),
        ("listen=maybe", "listen is 'true' or 'false'"),
        ("pool_size=0", "pool_size is a number of connections, at least 1"),
        ("pool_size=many", "pool_size is a number"),
        ("connect_timeout=-1", "connect_timeout is seconds"),
        ("schema=a&schema=b", "more than once"),
    ],
)
def test_bad_option_values_are_refused(query: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        PostgresBackend.from_url(f"postgresql://app@db/orders?{query}")


@pytest.mark.parametrize("url", ["mysql://db/orders", "postgresql://db/orders#part"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        PostgresBackend.from_url(url)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_the_plugin_registry_serves_both_schemes(scheme: str) -> None:
    backend = Plugins().backend_from_url(f"{scheme}://app@db/orders")
    assert isinstance(backend, PostgresBackend)
