"""Rewriting stored tasks as someone with write access to the store would: a plain `sqlite3` connection to
a SQLite queue's file, or a plain asyncpg connection to a PostgreSQL queue's schema, no sitq in between."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from postgres_server import execute, run


@dataclass
class Store:
    """A queue's store, and the attacker's raw access to its rows."""

    url: str
    sqlite_path: Path | None = None
    schema: str | None = None

    def _write(self, statement_sqlite: str, statement_postgres: str, *args: object) -> None:
        if self.sqlite_path is not None:
            with contextlib.closing(sqlite3.connect(self.sqlite_path)) as connection, connection:
                assert connection.execute(statement_sqlite, args).rowcount == 1
        else:
            run(execute(statement_postgres.format(s=f'"{self.schema}"'), *args))

    def set_payload(self, task_id: str, data: bytes) -> None:
        self._write(
            "UPDATE payloads SET payload = ? WHERE task_seq = (SELECT seq FROM tasks WHERE id = ?)",
            "UPDATE {s}.tasks SET payload = $1 WHERE id = $2",
            data,
            task_id,
        )

    def set_result(self, task_id: str, data: bytes) -> None:
        self._write(
            "UPDATE results SET result = ? WHERE task_seq = (SELECT seq FROM tasks WHERE id = ?)",
            "UPDATE {s}.tasks SET result = $1 WHERE id = $2",
            data,
            task_id,
        )

    def set_serializer(self, task_id: str, serializer: str) -> None:
        self._write(
            "UPDATE tasks SET serializer = ? WHERE id = ?",
            "UPDATE {s}.tasks SET serializer = $1 WHERE id = $2",
            serializer,
            task_id,
        )


def name_in_call(path: Path, task_id: str, function: str, *args: object) -> None:
    """Make the stored call of task `task_id` in the SQLite file `path`, written by the json serializer,
    name `function` (``module:qualname``) with `args`."""
    payload = json.dumps([{"__sitq_callable__": function}, list(args), {}]).encode()
    Store(f"sqlite:///{path}", sqlite_path=path).set_payload(task_id, payload)
