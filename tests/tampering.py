"""Rewriting a stored task as someone with write access to a SQLite queue file would: a plain `sqlite3`
connection, no sitq in between."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path


def name_in_call(path: Path, task_id: str, function: str, *args: object) -> None:
    """Make the stored call of pending task `task_id`, written by the json serializer, name `function`
    (``module:qualname``) with `args`."""
    payload = json.dumps([{"__sitq_callable__": function}, list(args), {}]).encode()
    with sqlite3.connect(path) as connection:
        updated = connection.execute(
            "UPDATE payloads SET payload = ? WHERE task_seq = "
            "(SELECT seq FROM tasks WHERE id = ? AND status = 'pending')",
            (payload, task_id),
        )
        assert updated.rowcount == 1, f"no pending task {task_id} in {path}"
    connection.close()
