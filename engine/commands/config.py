"""Engine layer: ``autodqm config validate FILE...`` checks subsystem configs.

Prints ``FILE: ok`` per valid file and one ``FILE: json.path: problem`` line per problem
(stdout: the findings are this command's output); exits 1 when any file is invalid.
"""

from __future__ import annotations

import argparse
import logging
import sys

from engine.config import find_subsystem, validate_files
from engine.errors import ConfigError
from engine.registry import build_registry
from engine.settings import Settings

logger = logging.getLogger(__name__)

NAME = "config"
HELP = "check subsystem configs (AutoDQM JSON schema)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``validate`` sub-command and its options."""
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    p = sub.add_parser(
        "validate",
        help="check config files; print 'FILE: ok' or one line per problem",
        description="Check subsystem configs against the schema and the comparators. "
        "Exit 0 when all are valid, 1 when any is not.",
    )
    p.add_argument(
        "files", nargs="+", metavar="FILE", help="a config PATH.json or a subsystem NAME"
    )
    p.add_argument("--config-dir", help="directory of <NAME>.json configs (default: config_dir)")


def run(args: argparse.Namespace) -> int:
    """Validate each file; 0 if all are valid, 1 otherwise."""
    settings = Settings.from_env()
    registry = build_registry(load_external=settings.load_external_plugins)
    config_dir = args.config_dir or settings.config_dir
    out = sys.stdout
    bad = 0
    for item in args.files:
        try:
            path = find_subsystem(item, config_dir)
        except ConfigError as err:
            out.write(f"{err}\n")
            bad += 1
            continue
        problems = validate_files([path], registry)
        for line in problems or [f"{path}: ok"]:
            out.write(f"{line}\n")
        bad += bool(problems)
    logger.info("validated %d config(s), %d invalid", len(args.files), bad)
    return 1 if bad else 0
