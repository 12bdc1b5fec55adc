"""Engine layer: command-line options shared by the commands that read runs from a data source.

``add_source_arguments`` adds ``--data-dir`` | ``--source-url`` (+ ``--cert --key --ca
--cache-dir --quota-gb --timeout``); ``source_from_args`` builds the Source they describe.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from engine.certification import load_golden, parse_golden
from engine.errors import DQMError
from engine.filecache import FileCache
from engine.sources.base import RunFile, Source
from engine.sources.client import HTTPSClient
from engine.sources.dqmgui import DEFAULT_URL, DQMGUISource
from engine.sources.listing import closest_runs
from engine.sources.local import LocalSource

DEFAULT_FILE_CACHE = Path("var/files")
DEFAULT_QUOTA_GB = 20.0


def run_number(text: str) -> int:
    """argparse type: a positive run number."""
    try:
        run = int(text)
    except ValueError:
        run = 0
    if run <= 0:
        msg = f"run number must be a positive integer, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return run


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        msg = f"expected a positive number, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def add_dataset_arguments(p: argparse.ArgumentParser) -> None:
    """``--series S --sample P [--processing X]``."""
    p.add_argument("--series", required=True, help="era, e.g. Run2022 ('online': Online layout)")
    p.add_argument(
        "--sample", required=True, help="primary dataset, e.g. SingleMuon (online: subsystem)"
    )
    p.add_argument(
        "--processing", help="e.g. Run2022C-10Dec2022-v1 (default: PromptReco when present)"
    )


def add_source_arguments(p: argparse.ArgumentParser) -> None:
    """The data-source options (one of ``--data-dir`` or ``--source-url`` is needed)."""
    g = p.add_argument_group("data source")
    where = g.add_mutually_exclusive_group()
    where.add_argument("--data-dir", help="local directory in the DQM GUI layout (e.g. var/demo)")
    where.add_argument("--source-url", help=f"DQM GUI file server URL (e.g. {DEFAULT_URL})")
    g.add_argument("--cert", help="X509 client certificate PEM (default: $X509_USER_CERT)")
    g.add_argument("--key", help="client key PEM (default: $X509_USER_KEY)")
    g.add_argument("--ca", help="CA bundle that signs the server (the CERN CA bundle)")
    g.add_argument(
        "--cache-dir",
        default=str(DEFAULT_FILE_CACHE),
        help=f"where downloaded files are kept (default: {DEFAULT_FILE_CACHE})",
    )
    g.add_argument(
        "--quota-gb",
        type=_positive,
        default=DEFAULT_QUOTA_GB,
        help=f"disk quota of the file cache; least recently used files go first "
        f"(default: {DEFAULT_QUOTA_GB:g})",
    )
    g.add_argument(
        "--timeout", type=_positive, default=60.0, help="read timeout in seconds (default: 60)"
    )


def _client_files(args: argparse.Namespace) -> tuple[str | None, str | None, str | None]:
    cert = args.cert or os.environ.get("X509_USER_CERT") or None
    key = args.key or (os.environ.get("X509_USER_KEY") if cert else None) or None
    return cert, key, args.ca


def source_from_args(args: argparse.Namespace) -> Source:
    """The Source the options describe: a LocalSource or a DQMGUISource with its file cache.

    Raises:
        DQMError: neither ``--data-dir`` nor ``--source-url`` given, or a bad option value.
    """
    if getattr(args, "data_dir", None):
        if not Path(args.data_dir).is_dir():
            msg = f"--data-dir {args.data_dir!r}: no such directory"
            raise DQMError(msg)
        return LocalSource(args.data_dir)
    if getattr(args, "source_url", None):
        cert, key, ca = _client_files(args)
        cache = FileCache(args.cache_dir, int(args.quota_gb * 1e9))
        return DQMGUISource(
            args.source_url,
            cert=cert,
            key=key,
            ca=ca,
            cache=cache,
            timeout=(min(10.0, args.timeout), args.timeout),
        )
    msg = (
        "no data source: pass --data-dir DIR (a directory in the DQM GUI layout, e.g. var/demo) "
        f"or --source-url URL (the DQM GUI file server, e.g. {DEFAULT_URL})"
    )
    raise DQMError(msg)


def certified_runs(args: argparse.Namespace, where: str) -> set[int]:
    """Runs of the golden JSON at a path or an https:// URL (fetched with --cert/--key/--ca)."""
    if where.startswith(("https://", "http://")):
        cert, key, ca = _client_files(args)
        client = HTTPSClient(cert=cert, key=key, ca=ca, timeout=(10.0, args.timeout))
        return set(parse_golden(client.get_text(where), where))
    return set(load_golden(where))


def describe(source: Source) -> str:
    """``var/demo`` or the server URL, for messages."""
    if isinstance(source, LocalSource):
        return str(source.root)
    if isinstance(source, DQMGUISource):
        return source.base_url
    return type(source).__name__


def find_run(
    source: Source, series: str, sample: str, run: int, processing: str | None = None
) -> RunFile:
    """The file of ``run`` (PromptReco first unless ``processing`` is given).

    Raises:
        DQMError: "run 357130 not found in Run2022/SingleMuon (closest: 357129, 357131)".
    """
    files = source.files(series, sample)
    of_run = [f for f in files if f.run == run]
    chosen = [f for f in of_run if processing is None or f.processing == processing]
    if chosen:
        return chosen[0]
    if of_run:
        found = ", ".join(f.processing for f in of_run)
        msg = f"run {run} has no processing {processing!r} in {series}/{sample} (found: {found})"
        raise DQMError(msg)
    near = closest_runs(run, (f.run for f in files))
    hint = f" (closest: {', '.join(map(str, near))})" if near else " (the dataset has no runs)"
    msg = f"run {run} not found in {series}/{sample}{hint}"
    raise DQMError(msg)
