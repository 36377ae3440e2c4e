"""The `sitq` command: run workers, and inspect and administer queues, from a terminal.

Its one extra dependency, rich, comes with ``pip install 'sitq-core[cli]'``. `import sitq` never imports
this package, so the library stays as light as its required dependencies.
"""

from __future__ import annotations

import sys

from sitq.cli.errors import ExitCode

INSTALL_HINT = "sitq: the command line needs its extra dependencies: pip install 'sitq-core[cli]'"


def main() -> None:
    """The console script: one line and exit 2 without the ``cli`` extra, else run the command."""
    try:
        import rich  # noqa: F401  # imported only to learn whether the extra is installed
    except ImportError:
        print(INSTALL_HINT, file=sys.stderr)
        raise SystemExit(ExitCode.USAGE) from None
    from sitq.cli.app import run

    raise SystemExit(run(sys.argv[1:]))
