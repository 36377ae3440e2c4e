"""Building SQLiteBackend from URLs and arguments, and finding it through the plugin registry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sitq.errors import ConfigurationError
from sitq.plugins import Plugins
from sitq_sqlite import SQLiteBackend


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///tasks.db", "SQLiteBackend('{cwd}/tasks.db', synchronous='full', busy_timeout=30.0)"),
        (
            "sqlite:///data/tasks.db",
            "SQLiteBackend('{cwd}/data/tasks.db', synchronous='full', busy_timeout=30.0)",
        ),
        (
            "sqlite:////srv/app/tasks.db",
            "SQLiteBackend('/srv/app/tasks.db', synchronous='full', busy_timeout=30.0)",
        ),
        (
            "sqlite:///my%20tasks.db?synchronous=normal",
            "SQLiteBackend('{cwd}/my tasks.db', synchronous='normal', busy_timeout=30.0)",
        ),
        (
            "sqlite:////srv/tasks.db?synchronous=full",
            "SQLiteBackend('/srv/tasks.db', synchronous='full', busy_timeout=30.0)",
        ),
        (
            "sqlite:////srv/tasks.db?busy_timeout=2.5&synchronous=normal",
            "SQLiteBackend('/srv/tasks.db', synchronous='normal', busy_timeout=2.5)",
        ),
    ],
)
def test_urls_follow_the_sqlalchemy_convention(url: str, expected: str) -> None:
    assert repr(SQLiteBackend.from_url(url)) == expected.format(cwd=os.getcwd())


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("sqlite://", "a SQLite URL is 'sqlite:///relative/tasks.db' or 'sqlite:////absolute/tasks.db'"),
        ("sqlite:///", "a SQLite URL is"),
        ("sqlite://tasks.db", "a SQLite URL is"),
        ("sqlite:tasks.db", "a SQLite URL is"),
        ("memory:///tasks.db", "a SQLite URL is"),
        ("sqlite:///tasks.db#top", "no '#' part"),
        ("sqlite:///tasks.db?synchronous", "cannot read the query"),
        (
            "sqlite:///tasks.db?timeout=5",
            "unknown option 'timeout'.*options are 'synchronous' and 'busy_timeout'",
        ),
        ("sqlite:///tasks.db?busy_timeout=soon", "busy_timeout is a number of seconds.*not 'soon'"),
        ("sqlite:///tasks.db?busy_timeout=-1", "busy_timeout is seconds to wait, at least 0"),
        ("sqlite:///tasks.db?busy_timeout=inf", "busy_timeout is seconds to wait, at least 0"),
        ("sqlite:///tasks.db?busy_timeout=nan", "busy_timeout is seconds to wait, at least 0"),
        ("sqlite:///tasks.db?busy_timeout=1&busy_timeout=2", "'busy_timeout' more than once"),
        ("sqlite:///tasks.db?synchronous=off", "synchronous must be 'full' or 'normal', not 'off'"),
        ("sqlite:///tasks.db?synchronous=full&synchronous=normal", "more than once"),
    ],
)
def test_malformed_urls_are_configuration_errors(url: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        SQLiteBackend.from_url(url)


def test_a_relative_path_is_fixed_when_the_backend_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    backend = SQLiteBackend("tasks.db")
    monkeypatch.chdir("/")

    assert backend.path == str(tmp_path / "tasks.db")


def test_bad_arguments_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="synchronous must be 'full' or 'normal'"):
        SQLiteBackend(tmp_path / "tasks.db", synchronous="off")  # type: ignore[arg-type]  # the runtime check
    with pytest.raises(ConfigurationError, match="busy_timeout"):
        SQLiteBackend(tmp_path / "tasks.db", busy_timeout=-1)


def test_the_plugin_registers_the_backend_for_its_scheme() -> None:
    backend = Plugins().backend_from_url("sqlite:////srv/tasks.db")

    assert isinstance(backend, SQLiteBackend)
    assert (SQLiteBackend.name, SQLiteBackend.url_schemes) == ("sqlite", ("sqlite",))


def test_discovering_the_plugin_does_not_import_the_driver() -> None:
    code = "import sys, sitq_sqlite.plugin; print('aiosqlite' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert found.stdout.strip() == "False"
