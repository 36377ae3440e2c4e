"""sitq-prometheus's README keeps its promises: each Python block runs as a program, and the excerpt of
plugin.py is the code in plugin.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from programs import run_program

PLUGIN = Path(__file__).resolve().parents[2] / "sitq-prometheus"
README = PLUGIN / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```$", README.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)


def test_the_readme_has_its_examples() -> None:
    assert len(BLOCKS) == 3


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{number}" for number in range(1, len(BLOCKS) + 1)])
def test_each_python_block_runs(code: str, tmp_path: Path) -> None:
    script = tmp_path / "readme_block.py"
    script.write_text(code, encoding="utf-8")
    completed = run_program(script, tmp_path)

    assert completed.returncode == 0, f"--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}"


def test_the_excerpt_of_plugin_py_is_its_code() -> None:
    [excerpt] = [code for code in BLOCKS if "def process_metrics" in code]
    source = {
        line.rstrip() for line in (PLUGIN / "src" / "sitq_prometheus" / "plugin.py").read_text().splitlines()
    }

    assert [line for line in excerpt.splitlines() if line.strip() and line.rstrip() not in source] == []
