"""examples/testing is an application with its tests, run as a user runs them: copied to a directory of
its own, with its own pytest.ini, by pytest in a process of its own, with the sitq fixtures coming from the
installed sitq-core. docs/how-to/testing-your-tasks.md quotes its files, which must not drift from them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "testing"
PAGE = ROOT / "docs" / "how-to" / "testing-your-tasks.md"
FILES = ["shop.py", "conftest.py", "test_shop.py", "pytest.ini"]


def test_the_example_holds_what_the_page_says() -> None:
    assert sorted(path.name for path in EXAMPLE.iterdir() if path.is_file()) == sorted(FILES)


def test_the_examples_tests_pass_under_pytest(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    shutil.copytree(EXAMPLE, project)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SITQ_", "PYTEST_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = f"--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}"

    assert completed.returncode == 0, report
    assert "4 passed" in completed.stdout, report
    assert "configfile: pytest.ini" in completed.stdout, report  # the example's settings, not sitq's
    assert not (project / "sitq.db").exists()


def test_the_page_quotes_each_file_as_it_is() -> None:
    page = PAGE.read_text(encoding="utf-8")
    for name in FILES:
        code = (EXAMPLE / name).read_text(encoding="utf-8")
        fence = "```ini" if name.endswith(".ini") else "```py"
        assert f"{fence}\n{code}```\n" in page, f"{PAGE.name} does not quote {name} as it is"
