"""``python -m sitq.cli``: the `sitq` command, for environments where the script is not on PATH."""

from sitq.cli import main

main()
