"""Where a command's answer goes: rich renderables for a person on stdout, JSON for a script, and every
note or error on stderr, so that stdout carries only the answer."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console, RenderableType
from rich.text import Text

_PIPED_WIDTH = 160


class Output:
    """One command's output channels; `json_mode` is ``--json``."""

    def __init__(self, *, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        # Piped or redirected, tables keep their natural width instead of rich's default of 80 columns.
        self.out = Console(highlight=False)
        if not self.out.is_terminal and "COLUMNS" not in os.environ:
            self.out.width = _PIPED_WIDTH
        self.err = Console(stderr=True, highlight=False)

    def show(self, *renderables: RenderableType) -> None:
        """Print for a person."""
        self.out.print(*renderables)

    def line(self, text: str, style: str = "") -> None:
        """One line of plain text on stdout, never wrapped and never read as rich markup."""
        self.out.print(Text(text, style=style), soft_wrap=True)

    def json(self, data: Any) -> None:
        """Print `data` as JSON for a script; values JSON cannot hold are written as their repr."""
        sys.stdout.write(json.dumps(data, indent=2, default=repr) + "\n")
        sys.stdout.flush()

    def note(self, text: str) -> None:
        """A remark beside the answer (how to get the next page, say), on stderr."""
        self.err.print(Text(text, style="dim"), soft_wrap=True)

    def error(self, message: str) -> None:
        """The one line a failed command leaves on stderr."""
        self.err.print(Text.assemble(("sitq: error: ", "bold red"), message), soft_wrap=True)
