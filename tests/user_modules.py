"""Modules of a user's project, written by a test into a directory on sys.path (also the `sitq`
command's working directory), each under a name of its own: what a process registers as tasks stays
registered, so no two tests may share a module name. Each module leaves a mark when it is imported, so
a test can prove that nothing imported it. Registered for every test directory by tests/conftest.py.
"""

from __future__ import annotations

import importlib
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

_MARK = '__import__("pathlib").Path(__file__).with_suffix(".imported").touch()\n'


@dataclass
class UserModules:
    directory: Path

    def write(self, stem: str, source: str) -> str:
        """Write a module whose name starts with `stem`; return its name."""
        name = f"{stem}_{uuid.uuid4().hex[:8]}"
        (self.directory / f"{name}.py").write_text(_MARK + textwrap.dedent(source))
        importlib.invalidate_caches()
        return name

    def load(self, stem: str, source: str) -> ModuleType:
        """Write a module and import it."""
        return importlib.import_module(self.write(stem, source))

    def imported(self, name: str) -> bool:
        """Whether any process has imported the module called `name`."""
        return (self.directory / f"{name}.imported").exists()


@pytest.fixture
def user_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> UserModules:
    monkeypatch.syspath_prepend(str(tmp_path))
    return UserModules(tmp_path)
