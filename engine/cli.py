"""Engine layer: the ``autodqm`` command line; each sub-command lives in engine/commands/.

Exit codes: 0 when the command did its job (even if histograms are flagged), 2 for
bad input (one-line error on stderr), 1 for an unexpected failure.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from engine import __version__
from engine.errors import DQMError

logger = logging.getLogger(__name__)

#: Sub-command modules, each with ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args)``.
COMMANDS: tuple[str, ...] = (
    "engine.commands.compare",
    "engine.commands.config",
    "engine.commands.demo_data",
    "engine.commands.demo",
    "engine.commands.refs",
    "engine.commands.runs",
    "engine.commands.fetch",
    "engine.commands.serve",
    "engine.commands.results",
    "engine.commands.scheduler",
    "engine.commands.process",
)


class _Parser(argparse.ArgumentParser):
    """Usage mistakes give one line (what was wrong and where), not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="autodqm", description="Automatic data-quality monitoring of DQM histograms."
    )
    parser.add_argument("--version", action="version", version=f"autodqm {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    for modname in COMMANDS:
        mod = importlib.import_module(modname)
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``autodqm`` console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a one-line usage error
        return int(exc.code or 0)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        return int(args._run(args))
    except DQMError as err:
        sys.stderr.write(f"autodqm {args.command}: error: {err}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
