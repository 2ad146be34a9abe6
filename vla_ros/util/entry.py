"""The stand-alone ``main()`` of a command that also runs as a ``vla-ros`` subcommand."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def run_command(
    prog: str,
    doc: str | None,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int],
    argv: list[str] | None = None,
) -> int:
    """Parse ``argv`` (None: ``sys.argv[1:]``) with the command's ``add_arguments`` (the parser's
    description is the first line of ``doc``, the module docstring) and return ``run``'s exit code."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0] if doc else None)
    add_arguments(parser)
    return run(parser.parse_args(argv))
