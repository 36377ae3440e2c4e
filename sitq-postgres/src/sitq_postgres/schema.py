"""The tables sitq keeps in a PostgreSQL schema, and the migrations that bring an older one up to date.

sitq's tables live in one schema of their own (``sitq`` unless the URL says ``?schema=NAME``), so they
never mix with the application's. The schema's `migrations` table holds one row per migration applied:
its version is the number of rows. Migrations only ever append to `MIGRATIONS`; an older schema is
upgraded in place, in one transaction that first takes an advisory lock named after the schema, so two
processes connecting to a fresh database at once cannot both migrate it, and a failure mid-upgrade leaves
the old schema intact (PostgreSQL's DDL is transactional).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sitq.errors import BackendError, ConfigurationError

if TYPE_CHECKING:
    import asyncpg

DEFAULT_SCHEMA = "sitq"
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,49}")

MIGRATIONS: list[tuple[str, ...]] = [
    # 1: one row per task, its attempts, and its parents' edges. `seq` is the enqueue order that breaks
    # ties on eta and pages listings. `unmet` counts the distinct parents that have not succeeded yet, so
    # that "ready" is one column the partial indexes test; `depends_on` keeps the parent ids as given.
    # The partial indexes are all that claiming and next_due read, so their cost does not grow with the
    # number of finished tasks: tasks_ready is in claim order, tasks_ready_by_eta answers next_due,
    # tasks_running_by_lease finds lost leases. Attempts and edges go with their task (ON DELETE CASCADE),
    # which is how purge removes them.
    (
        """
        CREATE TABLE {s}.tasks (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id text NOT NULL UNIQUE,
            name text NOT NULL,
            status text NOT NULL,
            serializer text NOT NULL,
            payload bytea NOT NULL,
            enqueued_at timestamptz NOT NULL,
            eta timestamptz NOT NULL,
            queue text NOT NULL,
            priority integer NOT NULL,
            max_attempts integer NOT NULL,
            retry text,
            timeout double precision,
            description text,
            attempts integer NOT NULL DEFAULT 0,
            unmet integer NOT NULL DEFAULT 0,
            depends_on jsonb,
            workflow_id text,
            worker_id text,
            started_at timestamptz,
            lease_expires_at timestamptz,
            finished_at timestamptz,
            cancel_requested boolean NOT NULL DEFAULT false,
            result bytea,
            error text,
            traceback text
        )
        """,
        """
        CREATE TABLE {s}.attempts (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            task_seq bigint NOT NULL REFERENCES {s}.tasks (seq) ON DELETE CASCADE,
            attempt integer NOT NULL,
            worker_id text NOT NULL,
            started_at timestamptz NOT NULL,
            finished_at timestamptz NOT NULL,
            outcome text NOT NULL,
            error text
        )
        """,
        """
        CREATE TABLE {s}.dependencies (
            parent_seq bigint NOT NULL REFERENCES {s}.tasks (seq) ON DELETE CASCADE,
            task_seq bigint NOT NULL REFERENCES {s}.tasks (seq) ON DELETE CASCADE,
            PRIMARY KEY (parent_seq, task_seq)
        )
        """,
        "CREATE INDEX dependencies_by_task ON {s}.dependencies (task_seq)",
        "CREATE INDEX attempts_by_task ON {s}.attempts (task_seq, id)",
        "CREATE INDEX tasks_ready ON {s}.tasks (queue, priority DESC, eta, seq)"
        " WHERE status = 'pending' AND unmet = 0",
        "CREATE INDEX tasks_ready_by_eta ON {s}.tasks (queue, eta) WHERE status = 'pending' AND unmet = 0",
        "CREATE INDEX tasks_running_by_lease ON {s}.tasks (queue, lease_expires_at)"
        " WHERE status = 'in_progress'",
        "CREATE INDEX tasks_lost ON {s}.tasks (lease_expires_at) WHERE status = 'in_progress'",
        "CREATE INDEX tasks_finished ON {s}.tasks (finished_at) WHERE finished_at IS NOT NULL",
        "CREATE INDEX tasks_by_workflow ON {s}.tasks (workflow_id) WHERE workflow_id IS NOT NULL",
    ),
    # unique keys: a task's `unique_key`, NULL for none (every task stored before), and its option
    # `unique_for` (seconds, NULL for none), kept to be shown like the other options. An enqueue with keys
    # takes a transaction-scoped advisory lock per key (`keys.lock_ids`), then reads the tasks holding
    # them (`queries.KEY_HOLDERS`): the partial index makes that one probe per key, and holds keyed
    # tasks only. Not a unique index: whether a succeeded task holds its key depends on the new task's
    # `unique_for`, which no index can say.
    (
        "ALTER TABLE {s}.tasks ADD COLUMN unique_key text",
        "ALTER TABLE {s}.tasks ADD COLUMN unique_for double precision",
        "CREATE INDEX tasks_by_unique_key ON {s}.tasks (unique_key) WHERE unique_key IS NOT NULL",
    ),
    # schedules: periodic tasks (sitq.schedules), one row per schedule by name. `id` changes whenever a
    # schedule is replaced, and fire_schedule's compare-and-set checks it with next_run. `options` is
    # JSON text (sitq.schedules.options_to_json); `payload` the sealed call.
    (
        """
        CREATE TABLE {s}.schedules (
            name text PRIMARY KEY,
            id text NOT NULL UNIQUE,
            cron text NOT NULL,
            timezone text NOT NULL,
            catch_up text NOT NULL,
            task_name text NOT NULL,
            payload bytea NOT NULL,
            serializer text NOT NULL,
            options text NOT NULL,
            next_run timestamptz NOT NULL,
            paused boolean NOT NULL DEFAULT false,
            last_run timestamptz
        )
        """,
    ),
    # limits: concurrency and rate limits per key (sitq.limiting). `limit_key` is the key a task's limits
    # count by (NULL for a task without limits), `concurrency_limit`, `rate_count` and `rate_period`
    # (seconds) its limits. The ready indexes keep only tasks without a key, so claiming them never reads
    # a held-back task; tasks with a key have their own index, by key first, then in claim order, and
    # running ones theirs, by key, for the counts. `limit_starts` remembers the starts of rate-limited
    # tasks until their period has passed (`until`).
    (
        "ALTER TABLE {s}.tasks ADD COLUMN limit_key text, ADD COLUMN concurrency_limit integer,"
        " ADD COLUMN rate_count integer, ADD COLUMN rate_period double precision",
        "DROP INDEX {s}.tasks_ready",
        "DROP INDEX {s}.tasks_ready_by_eta",
        "CREATE INDEX tasks_ready ON {s}.tasks (queue, priority DESC, eta, seq)"
        " WHERE status = 'pending' AND unmet = 0 AND limit_key IS NULL",
        "CREATE INDEX tasks_ready_by_eta ON {s}.tasks (queue, eta)"
        " WHERE status = 'pending' AND unmet = 0 AND limit_key IS NULL",
        "CREATE INDEX tasks_limited ON {s}.tasks (limit_key, priority DESC, eta, seq)"
        " WHERE status = 'pending' AND unmet = 0 AND limit_key IS NOT NULL",
        "CREATE INDEX tasks_running_by_key ON {s}.tasks (limit_key, lease_expires_at)"
        " WHERE status = 'in_progress' AND limit_key IS NOT NULL",
        """
        CREATE TABLE {s}.limit_starts (
            limit_key text NOT NULL,
            started_at timestamptz NOT NULL,
            until timestamptz NOT NULL
        )
        """,
        "CREATE INDEX limit_starts_by_key ON {s}.limit_starts (limit_key, until)",
    ),
]

_CREATE_BOOKKEEPING = (
    "CREATE SCHEMA IF NOT EXISTS {s}",
    "CREATE TABLE IF NOT EXISTS {s}.migrations"
    " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
)
_VERSION = "SELECT max(version) FROM {s}.migrations"
_EXISTS = "SELECT to_regclass(format('%I.migrations', $1::text)) IS NOT NULL"
_RECORD = "INSERT INTO {s}.migrations (version) VALUES ($1)"
# Held until the migrating transaction ends; keyed by the schema's name, so other schemas go on.
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('sitq schema ' || $1::text))"


def validate_name(name: object) -> str:
    """The schema's name if it is one sitq accepts: lowercase letters, digits and underscores, not
    starting with a digit, at most 50 characters (the rest of 63 names its notification channel)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"a sitq schema name is lowercase letters, digits and underscores, not starting with a digit, "
            f"at most 50 characters, such as 'sitq' or 'jobs_2'; not {name!r}"
        )
    return name


def quoted(name: str) -> str:
    """The validated name as a quoted identifier, ready to write into a statement."""
    return f'"{validate_name(name)}"'


async def prepare(connection: asyncpg.Connection, name: str, where: str) -> int:
    """Create or upgrade sitq's tables in schema `name`, and return its version; raise `BackendError`
    for a schema that a newer sitq-postgres wrote. `where` names the database in messages. The common
    case, a schema already current, costs two reads and no lock."""
    if await connection.fetchval(_EXISTS, name):
        version = await _version(connection, name, where)
        if version == len(MIGRATIONS):
            return version
    s = quoted(name)
    async with connection.transaction():
        await connection.execute(_LOCK, name)
        for statement in _CREATE_BOOKKEEPING:
            await connection.execute(statement.replace("{s}", s))
        # Read again under the lock: another process may have migrated while we waited for it.
        version = await _version(connection, name, where)
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in migration:
                await connection.execute(statement.replace("{s}", s))
            await connection.execute(_RECORD.replace("{s}", s), number)
    return len(MIGRATIONS)


async def _version(connection: asyncpg.Connection, name: str, where: str) -> int:
    version = int(await connection.fetchval(_VERSION.replace("{s}", quoted(name))) or 0)
    if version > len(MIGRATIONS):
        raise BackendError(
            f"schema {name!r} of {where} has sitq schema version {version}, but this sitq-postgres "
            f"understands versions up to {len(MIGRATIONS)}: a newer sitq-postgres wrote it; upgrade "
            "sitq-postgres"
        )
    return version
