"""How the command is shipped: a console script of sitq-core, its dependencies behind the `cli` extra,
and nothing of it imported by `import sitq`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sitq_command import SITQ, Sitq

from sitq.cli import INSTALL_HINT


def test_without_the_cli_extra_the_command_says_what_to_install(sitq: Sitq, tmp_path: Path) -> None:
    shadow = tmp_path / "no_rich"
    (shadow / "rich").mkdir(parents=True)
    (shadow / "rich" / "__init__.py").write_text("raise ImportError('No module named rich')\n")
    completed = sitq("stats", PYTHONPATH=str(shadow))
    assert (completed.returncode, completed.stdout, completed.stderr) == (2, "", f"{INSTALL_HINT}\n")
    assert "pip install 'sitq-core[cli]'" in INSTALL_HINT


def test_import_sitq_imports_nothing_of_the_command() -> None:
    probe = "import sitq, sys; print(sorted(m for m in sys.modules if m.startswith(('sitq.cli', 'rich'))))"
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"


def test_the_command_runs_as_a_module_too_and_knows_its_version(sitq: Sitq) -> None:
    from importlib.metadata import version

    assert sitq.ok("--version").strip() == f"sitq {version('sitq-core')}"
    completed = subprocess.run(
        [sys.executable, "-m", "sitq.cli", "--version"], capture_output=True, text=True, env=sitq.env()
    )
    assert completed.stdout.strip() == f"sitq {version('sitq-core')}"
    assert SITQ.parent == Path(sys.executable).parent
