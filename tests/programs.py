"""Running a whole Python program the way a user would: a fresh interpreter, in a directory of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_program(script: Path, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `script` with this interpreter in `cwd`, without $SITQ_URL, so defaults apply as documented."""
    env = {key: value for key, value in os.environ.items() if key != "SITQ_URL"}
    return subprocess.run(
        [sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def is_gone(pid: int) -> bool:
    """Whether no process has this id any more (it ended, and its parent has reaped it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False
