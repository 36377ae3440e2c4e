"""Running a whole Python program the way a user would: a fresh interpreter, in a directory of its own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

_SQLITE_IMPORT = re.compile(r"^([ \t]*)from sitq(?:\.backends\.sqlite)? import .*\bSQLiteBackend\b.*$", re.M)
_SQLITE_BACKEND = re.compile(r"\bSQLiteBackend\([^()]*\)")
_SQLITE_URL = re.compile(r"([\"'])sqlite:///[^\"']*\1")


def run_program(
    script: Path, cwd: Path, timeout: float = 60, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `script` with this interpreter in `cwd`, without $SITQ_URL, so defaults apply as documented;
    `env` adds variables (a $SITQ_URL of the test's choosing, say)."""
    variables = {key: value for key, value in os.environ.items() if key != "SITQ_URL"}
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env={**variables, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def on_postgres(source: str, url: str) -> str:
    """A program's `source` with every SQLite store it names moved to the PostgreSQL store at `url`: each
    ``SQLiteBackend(...)`` becomes ``PostgresBackend.from_url(url)``, imported beside SQLiteBackend's
    import, and each ``"sqlite:///..."`` literal becomes `url`. A store the program leaves to the default
    follows $SITQ_URL: run it with that set to `url` too. Raises ValueError for a store named some other
    way, which this rewrite would silently leave on SQLite."""
    source = _SQLITE_IMPORT.sub(r"\g<0>\n\1from sitq import PostgresBackend", source)
    source = _SQLITE_BACKEND.sub(lambda _: f"PostgresBackend.from_url({url!r})", source)
    source = _SQLITE_URL.sub(lambda _: repr(url), source)
    if left := re.search(r"SQLiteBackend\(|sqlite://", source):
        raise ValueError(f"a SQLite store this rewrite does not know, at {source[left.start() :][:60]!r}")
    return source


def is_gone(pid: int) -> bool:
    """Whether no process has this id any more (it ended, and its parent has reaped it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
