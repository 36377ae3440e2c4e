"""Hook implementations only; the backend (and asyncpg) is imported when sitq first asks for backends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sitq.hookspecs import hookimpl

if TYPE_CHECKING:
    from sitq.backend import Backend


@hookimpl
def sitq_register_backends() -> list[type[Backend]]:
    from sitq_postgres.backend import PostgresBackend

    return [PostgresBackend]
