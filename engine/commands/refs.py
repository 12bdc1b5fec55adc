"""Engine layer: ``autodqm refs RUN --subsystem X`` — which reference runs, and why.

The subsystem config's ``references`` key sets the policy; flags override it. The
dataset comes from ``--series/--sample``, else the config's ``"dataset":
"<series>/<sample>"``, else (a demo directory) the demo's own dataset.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine.certification import SourceCertification
from engine.commands._source_args import add_source_arguments, certified_runs, source_from_args
from engine.config import SubsystemConfig, find_subsystem, load_subsystem
from engine.demo.generate import MANIFEST
from engine.demo.runs import SAMPLE, SERIES
from engine.errors import ConfigError, DQMError
from engine.references import POLICIES, Policy, RefChoice, policy_from_config
from engine.registry import build_registry
from engine.runmeta import RunMeta, merge_meta, meta_from_demo, meta_from_runfiles
from engine.settings import Settings
from engine.sources.base import RunFile, Source

NAME = "refs"
HELP = "show the reference runs a policy chooses for a run, and why"


def _positive(text: str, what: str = "a positive integer") -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        msg = f"expected {what}, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return n


def _run_number(text: str) -> int:
    return _positive(text, "a run number (a positive integer)")


def _run_list(text: str) -> list[int]:
    return [_run_number(t.strip()) for t in text.split(",") if t.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=_run_number, metavar="RUN", help="the data run")
    p.add_argument("--subsystem", "-s", required=True, help="subsystem NAME or a config PATH.json")
    p.add_argument("--config-dir", help="directory of <NAME>.json configs (default: config_dir)")
    p.add_argument("--series", help="era, e.g. Run2022 (default: the config's dataset key)")
    p.add_argument("--sample", help="primary dataset, e.g. SingleMuon (default: as --series)")
    p.add_argument("--processing", help="e.g. Run2022C-10Dec2022-v1 (default: PromptReco)")
    p.add_argument("--policy", choices=tuple(POLICIES), help="override the config's policy")
    p.add_argument("--count", type=_positive, help="number of reference runs (default 4)")
    p.add_argument("--runs", type=_run_list, help="comma-separated fixed reference runs")
    p.add_argument("--exclude", type=_run_list, help="comma-separated runs never to use")
    p.add_argument(
        "--golden",
        metavar="PATH_OR_URL",
        help="golden JSON of certified runs (default: golden.json in --data-dir, "
        "else every run of the data source)",
    )
    add_source_arguments(p)
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def _data_dir(args: argparse.Namespace) -> Path | None:
    d = getattr(args, "data_dir", None)
    return Path(d) if d is not None else None


# -- choosing ------------------------------------------------------------------------------
def dataset_of(args: argparse.Namespace, sub: SubsystemConfig) -> tuple[str, str]:
    """(series, sample): flags, else the config's ``dataset``, else a demo directory's."""
    if args.series and args.sample:
        return args.series, args.sample
    if sub.dataset:
        series, _, sample = sub.dataset.partition("/")
        if not series or not sample or "/" in sample:
            msg = f"{sub.name}: dataset: expected '<series>/<sample>', found {sub.dataset!r}"
            raise ConfigError(msg)
        return args.series or series, args.sample or sample
    data_dir = _data_dir(args)
    if data_dir is not None and (data_dir / MANIFEST).is_file():  # a demo: Run2022/SingleMuon
        return args.series or SERIES, args.sample or SAMPLE
    msg = (
        f"no dataset for {sub.name}: give --series and --sample, or set "
        f'"dataset": "<series>/<sample>" in its config'
    )
    raise ConfigError(msg)


def policy_of(args: argparse.Namespace, sub: SubsystemConfig, where: str) -> Policy:
    """The config's policy with the command-line overrides applied."""
    spec: dict[str, Any] = dict(sub.references or {})
    if args.policy or args.runs:
        name = args.policy or "fixed"
        if name != spec.get("policy", "previous_good"):
            spec = {"policy": name}
        if args.runs:
            spec["runs"] = args.runs
    if args.count:
        spec["count"] = args.count
    flags = args.policy or args.runs or args.count
    return policy_from_config(spec, "command line" if flags else f"{where}: references")


def _certified(
    args: argparse.Namespace, source: Source, series: str, sample: str
) -> tuple[set[int], str]:
    """Certified runs: --golden, else golden.json in --data-dir, else every run of the source."""
    data_dir = _data_dir(args)
    location = args.golden
    if location is None and data_dir is not None and (data_dir / "golden.json").is_file():
        location = str(data_dir / "golden.json")
    if location is not None:
        return certified_runs(args, location), f"golden JSON {location}"
    online = SourceCertification(source, series, sample, processing=args.processing)
    return set(online.read()), online.describe()


def _meta(
    args: argparse.Namespace, files: dict[int, RunFile], wanted: list[int]
) -> dict[int, RunMeta]:
    data_dir = _data_dir(args)
    demo = meta_from_demo(data_dir) if data_dir is not None else {}
    return merge_meta(demo, meta_from_runfiles({r: files[r] for r in wanted if r in files}))


def choose(args: argparse.Namespace) -> tuple[RefChoice, dict[str, Any]]:
    """The choice for ``args.run``, and context for the output (dataset, notes)."""
    settings = Settings.from_env()
    registry = build_registry(load_external=settings.load_external_plugins)
    path = find_subsystem(args.subsystem, args.config_dir or settings.config_dir)
    sub = load_subsystem(path, registry)
    policy = policy_of(args, sub, str(path))
    series, sample = dataset_of(args, sub)
    source = source_from_args(args)
    files = source.runs(series, sample, args.processing)
    certified, cert_text = _certified(args, source, series, sample)
    good = sorted(set(certified) & set(files))
    meta: dict[int, RunMeta] = {}
    if policy.name == "similar":
        near = sorted(good, key=lambda r: abs(r - args.run))[: 2 * policy.window]
        meta = _meta(args, files, [args.run, *near])
    choice = policy.choose(args.run, good, meta, args.exclude or ())
    notes = []
    if args.run not in files:
        notes.append(f"run {args.run} has no DQM file in {series}/{sample}")
    missing = [r for r in choice.runs if r not in files]
    notes += [f"reference run {r} has no DQM file in {series}/{sample}" for r in missing]
    context = {
        "subsystem": sub.name,
        "dataset": f"{series}/{sample}",
        "certification": f"{cert_text} ({len(good)} certified runs with files)",
        "policy_spec": policy.to_dict(),
        "notes": notes,
    }
    return choice, context


def run(args: argparse.Namespace) -> int:
    choice, ctx = choose(args)
    if args.format == "json":
        out = {
            "run": args.run,
            "subsystem": ctx["subsystem"],
            "references": list(choice.runs),
            "reason": choice.reason,
            "policy": choice.policy,
            "policy_spec": ctx["policy_spec"],
            "dataset": ctx["dataset"],
            "certification": ctx["certification"],
            "notes": ctx["notes"],
        }
        json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        refs = ", ".join(map(str, choice.runs)) or "none"
        lines = [
            f"{ctx['subsystem']} run {args.run} ({ctx['dataset']}): references {refs}",
            f"  policy: {choice.policy} {json.dumps(ctx['policy_spec'])}",
            f"  why: {choice.reason}",
            f"  certification: {ctx['certification']}",
            *(f"  note: {n}" for n in ctx["notes"]),
        ]
        sys.stdout.write("\n".join(lines) + "\n")
    if not choice.runs:
        msg = f"run {args.run}: no reference runs: {choice.reason}"
        raise DQMError(msg)
    return 0
