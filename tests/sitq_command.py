"""Running the real, installed `sitq` executable as a user would: in a subprocess, in a directory of its
own, against a backend given by URL, or in a pseudo-terminal. tox installs the executable next to the
interpreter. The tests of tests/cli use it through their conftest's fixtures."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SITQ = Path(sys.executable).parent / "sitq"
TESTS = Path(__file__).resolve().parent
# Variables that change what the command prints or which backend it uses, and so are set by the tests.
_CONTROLLED = ("SITQ_URL", "PYTHONPATH", "COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TERM")


@dataclass
class Sitq:
    """Runs `sitq` in `cwd` with $SITQ_URL set to `url`, and tests/ on PYTHONPATH for `cli_tasks`."""

    cwd: Path
    url: str | None

    def env(self, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in _CONTROLLED}
        env["PYTHONPATH"] = str(TESTS)
        if self.url is not None:
            env["SITQ_URL"] = self.url
        env.update(extra)
        return env

    def __call__(self, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SITQ, *args], cwd=self.cwd, env=self.env(**env), capture_output=True, text=True, timeout=timeout
        )

    def ok(self, *args: str, **env: str) -> str:
        """Run a command that must succeed; return its stdout."""
        completed = self(*args, **env)
        assert completed.returncode == 0, _explain(args, completed)
        return completed.stdout

    def json(self, *args: str, **env: str) -> Any:
        """Run a command with --json that must succeed; return what it printed, parsed."""
        return json.loads(self.ok(*args, "--json", **env))

    def fails(self, code: int, *args: str, **env: str) -> str:
        """Run a command that must exit with `code`, leaving one line on stderr and no traceback;
        return that line."""
        completed = self(*args, **env)
        assert completed.returncode == code, _explain(args, completed)
        lines = completed.stderr.splitlines()
        assert len(lines) == 1 and "Traceback" not in completed.stderr, _explain(args, completed)
        assert lines[0].startswith("sitq: error: "), lines[0]
        return lines[0]

    def enqueue(self, *args: str) -> str:
        """Enqueue a task; return its id (the only thing `enqueue` prints)."""
        return self.ok("enqueue", *args).strip()

    @contextmanager
    def worker(self, *args: str) -> Iterator[BackgroundWorker]:
        """A `sitq worker cli_tasks` in the background, stopped with SIGTERM (if still running) at the end."""
        log = self.cwd / f"worker-{time.monotonic_ns()}.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                [SITQ, "worker", "cli_tasks", *args],
                cwd=self.cwd,
                env=self.env(),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        background = BackgroundWorker(process, log)
        try:
            yield background
        finally:
            background.stop()

    def in_terminal(self, *args: str, columns: int = 120) -> tuple[int, str]:
        """Run a command in a pseudo-terminal, as a person would; return its status and all it wrote."""
        return run_in_terminal([SITQ, *args], self.env(), self.cwd, columns)


@dataclass
class BackgroundWorker:
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> int:
        """SIGTERM, then wait for the graceful drain; return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    @property
    def log(self) -> str:
        return self.log_path.read_text()


def _explain(args: Sequence[str], completed: subprocess.CompletedProcess[str]) -> str:
    return (
        f"sitq {' '.join(args)} exited {completed.returncode}\n"
        f"--- stdout\n{completed.stdout}\n--- stderr\n{completed.stderr}"
    )


def run_in_terminal(
    argv: Sequence[str | Path], env: dict[str, str], cwd: Path, columns: int
) -> tuple[int, str]:
    """Run `argv` with a pseudo-terminal of `columns` columns as stdin, stdout and stderr."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    process = subprocess.Popen(
        [str(arg) for arg in argv],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**env, "TERM": "xterm-256color"},
        cwd=cwd,
    )
    os.close(terminal)
    written = bytearray()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if not select.select([controller], [], [], 0.1)[0]:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the command has exited and its end of the terminal is closed
                break
            if not chunk:
                break
            written += chunk
        status = process.wait(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    return status, written.decode(errors="replace")
