r"""Benchmark: our ``beta_binomial`` against CMS AutoDQM's own plugin, histogram by histogram.

Builds AutoDQM's histogram pairs from an unchanged AutoDQM subsystem config the way
AutoDQM's compile step does (``main_gdir`` + path; a ``*`` in the last path part keeps
every key of the data directory that *contains* the text before the ``*`` and exists in
every reference; a plain name must exist in the data and every reference), runs
AutoDQM's ``beta_binomial`` on each with ``**config_entry`` as keyword arguments, runs
ours through the pipeline with the same config (restricted to ``beta_binomial``), and
prints chi2 and max_pull of both. AutoDQM rounds both to 2 decimals, so ours are rounded
the same way (``round(np.float64, 2)``) before comparing; a second pass with the plugin's
``round`` shadowed gives AutoDQM's unrounded values, and the raw difference to those.
Histograms AutoDQM returns ``None`` for (empty data or references) are listed apart with
our verdict: we flag empty data on purpose (STATS.md). Nothing of AutoDQM is copied here:
its plugin is imported from the checkout given with ``--autodqm`` (which needs
``plugins/beta_binomial.py``, ``plugins/pullvals.py``, ``autodqm/plugin_results.py``).

Exit status 0 when every histogram AutoDQM reports agrees within 0.01, 1 otherwise.

How to run (from the repository root; ``PYTHONPATH=.`` until the package is installed).
``--autodqm`` is a checkout of the public AutoDQM/AutoDQM repository, or a directory holding just the
three files above at the same paths. Data: ``--make-data DIR`` writes a data run and four
references with edge cases (see ``autodqm_parity_data.py``); demo data works as well::

    python benchmarks/autodqm_parity.py --make-data /tmp/parity
    python benchmarks/autodqm_parity.py --autodqm /tmp/AutoDQM \
        --config ../shared/autodqm-config/CSC.json \
        --data /tmp/parity/DQM_V0001_R000362760__parity.root \
        --refs /tmp/parity/DQM_V0001_R000362{695,696,698,720}__parity.root [--json]
    # the same with --config ../shared/autodqm-config/RPC.json; or, on demo data:
    python -m engine.cli demo-data /tmp/demo --runs 8 --subsystems CSC RPC
    python benchmarks/autodqm_parity.py --autodqm /tmp/AutoDQM --config ... \
        --data <a run's DQM_V0001_R000*.root under /tmp/demo> --refs <four other runs>
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import uproot

from engine.commands.compare import with_comparators
from engine.config import load_subsystem
from engine.pipeline import run_comparison
from engine.registry import build_registry
from engine.runner import read_inputs
from engine.types import ComparisonResult

REPO = Path(__file__).resolve().parents[1]
TOL = 0.01
_AUTODQM_MODULES = ("plugins", "autodqm", "beta_binomial", "pullvals")


def load_autodqm(checkout: Path) -> Any:
    """AutoDQM's ``beta_binomial`` function, imported from ``checkout`` in isolation.

    AutoDQM imports each plugin as a top-level module from its plugin directory, with
    the checkout on ``sys.path`` for ``plugins.pullvals`` and ``autodqm.*``. Our own
    ``plugins`` package has the same name, so this repository is taken off ``sys.path``
    and our modules out of ``sys.modules`` for the import, and both are put back after.
    """
    saved_path = list(sys.path)
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] in _AUTODQM_MODULES}
    for k in saved:
        del sys.modules[k]
    ours = {str(REPO), "", str(Path.cwd())}
    sys.path[:] = [str(checkout / "plugins"), str(checkout)]
    sys.path += [p for p in saved_path if p not in ours and Path(p or ".").resolve() != REPO]
    try:
        module = importlib.import_module("beta_binomial")
        func = module.comparators()["beta_binomial"]
        for file in (module.__file__, module.normalize_rows.__code__.co_filename):
            if not str(file).startswith(str(checkout)):
                msg = f"imported {file}, expected a file below {checkout}"
                raise RuntimeError(msg)
    finally:
        for k in [k for k in sys.modules if k.split(".")[0] in _AUTODQM_MODULES]:
            del sys.modules[k]
        sys.modules.update(saved)
        sys.path[:] = saved_path
    return func


@dataclass
class HistPair:
    """The attributes AutoDQM's plugins read from its ``autodqm.histpair.HistPair``."""

    config: dict[str, Any]
    data_run: str
    data_name: str
    data_hist: Any
    ref_runs: list[str]
    ref_hists: list[Any]
    path: str = ""
    data_concat: Any = None
    ref_concat: Any = None
    comparators: list[str] = field(default_factory=list)


def autodqm_histpairs(
    config: dict[str, Any], data: Any, refs: list[Any], data_run: int, ref_runs: list[int]
) -> list[HistPair]:
    """AutoDQM's compile step (uproot version) over open files, same matching rules."""
    main_gdir, default_comps = config["main_gdir"], config.get("comparators")
    pairs: list[HistPair] = []
    for hconf in config["hists"]:
        hconf.setdefault("comparators", default_comps)
        h = hconf["path"].split("/")[-1]
        gdir = hconf["path"].split(h)[0]
        try:
            data_dir = data[(main_gdir.format(data_run) + gdir)[:-1]]
        except Exception:  # noqa: BLE001, S112 - AutoDQM skips an entry without its directory
            continue
        ref_dirs = []
        for f, run in zip(refs, ref_runs, strict=True):
            with_dir = (main_gdir.format(run) + gdir)[:-1]
            if with_dir in f:
                ref_dirs.append(f[with_dir])
        data_keys = data_dir.keys()
        ref_keyss = [d.keys() for d in ref_dirs]
        if "*" not in h:
            names = (
                [h]
                if h in [k[:-2] for k in data_keys]
                and all(h in [k[:-2] for k in ks] for ks in ref_keyss)
                else []
            )
        else:
            names = [
                k[:-2]
                for k in data_keys
                if h.split("*")[0] in k
                and all(k in ks for ks in ref_keyss)
                and "<" not in k
                and "/" not in k[:-2]
            ]
        for name in names:
            try:
                d, rs = data_dir[name], [rd[name] for rd in ref_dirs]
            except Exception:  # noqa: BLE001, S112 - as AutoDQM: unreadable objects are skipped
                continue
            comps = hconf["comparators"] or ["pull_values", "ks_test", "beta_binomial"]
            pairs.append(
                HistPair(
                    hconf,
                    str(data_run),
                    name,
                    d,
                    [str(r) for r in ref_runs],
                    rs,
                    path=gdir + name,
                    comparators=list(comps),
                )
            )
    return pairs


def run_autodqm(func: Any, pairs: list[HistPair], *, unrounded: bool = False) -> dict[str, Any]:
    """path -> ``(chi2, max_pull)``, ``None`` (AutoDQM gave no result) or an error string.

    With ``unrounded``, the plugin module's ``round`` is shadowed by the identity for
    the call (its file is unchanged), which yields the values before AutoDQM rounds them.
    """
    out: dict[str, Any] = {}
    if unrounded:
        func.__globals__["round"] = lambda x, ndigits=None: x
    try:
        for hp in pairs:
            if "beta_binomial" not in hp.comparators or hp.path in out:
                continue  # a path listed twice (wildcard and by name) gives the same numbers
            try:
                res = func(hp, **hp.config)
            except Exception as err:  # noqa: BLE001 - reported, never hidden
                last = traceback.extract_tb(err.__traceback__)[-1]
                out[hp.path] = f"{type(err).__name__}: {err} (line {last.lineno})"
                continue
            out[hp.path] = None if not res else (res.info["Chi_Squared"], res.info["Max_Pull_Val"])
    finally:
        func.__globals__.pop("round", None)
    return out


def run_ours(config: Path, data: Path, refs: list[Path]) -> tuple[dict[str, ComparisonResult], Any]:
    registry = build_registry()
    sub = with_comparators(load_subsystem(config, registry), ["beta_binomial"], registry)
    inputs = read_inputs(sub, data, refs)
    report = run_comparison(sub, registry, inputs)
    return {r.path: r for r in report.results if r.comparator == "beta_binomial"}, inputs


def _r2(x: float) -> float:
    return float(round(np.float64(x), 2))  # AutoDQM: round(np.float64, 2)


def compare(
    theirs: dict[str, Any], raw: dict[str, Any], ours: dict[str, ComparisonResult]
) -> dict[str, Any]:
    """Rows for every histogram either side looked at, and the summary numbers.

    ``theirs`` are AutoDQM's reported (rounded) values, ``raw`` the same unrounded.
    """
    rows, none_rows, errors, only_ours = [], [], [], []
    for path, val in sorted(theirs.items()):
        mine = ours.get(path)
        if isinstance(val, str) or val is None:
            verdict = f"{mine.status.value}: {mine.reason}" if mine else "not compared by us"
            (errors if isinstance(val, str) else none_rows).append(
                {"histogram": path, "autodqm": val, "ours": verdict}
            )
            continue
        if mine is None or "chi2" not in mine.scores:
            errors.append({"histogram": path, "autodqm": val, "ours": mine and mine.reason})
            continue
        c2, mp = mine.scores["chi2"], mine.scores["max_pull"]
        d_c2, d_mp = abs(_r2(c2) - val[0]), abs(_r2(mp) - val[1])
        raw_c2, raw_mp = (float(v) for v in raw.get(path) or (math.nan, math.nan))
        rows.append(
            {
                "histogram": path,
                "autodqm_chi2": val[0],
                "ours_chi2": c2,
                "d_chi2": d_c2,
                "autodqm_raw_chi2": raw_c2,
                "raw_d_chi2": abs(c2 - raw_c2),
                "autodqm_max_pull": val[1],
                "ours_max_pull": mp,
                "d_max_pull": d_mp,
                "autodqm_raw_max_pull": raw_mp,
                "raw_d_max_pull": abs(mp - raw_mp),
                "status": mine.status.value,
                "agree": d_c2 <= TOL + 1e-9 and d_mp <= TOL + 1e-9,
            }
        )
    for path, mine in sorted(ours.items()):
        if path not in theirs:
            only_ours.append({"histogram": path, "ours": f"{mine.status.value}: {mine.reason}"})
    summary = {
        "reported": len(rows),
        "agree": sum(r["agree"] for r in rows),
        "max_d_chi2": max((r["d_chi2"] for r in rows), default=0.0),
        "max_d_max_pull": max((r["d_max_pull"] for r in rows), default=0.0),
        "max_raw_d_chi2": float(np.nanmax([r["raw_d_chi2"] for r in rows] or [0.0])),
        "max_raw_d_max_pull": float(np.nanmax([r["raw_d_max_pull"] for r in rows] or [0.0])),
        "autodqm_none": len(none_rows),
        "errors": len(errors),
        "only_ours": len(only_ours),
    }
    return {
        "rows": rows,
        "autodqm_none": none_rows,
        "errors": errors,
        "only_ours": only_ours,
        "summary": summary,
    }


def summary_line(s: dict[str, Any]) -> str:
    return (
        f"{s['reported']} histograms AutoDQM reports, {s['agree']} agree within {TOL}, "
        f"max |Δchi2| = {s['max_d_chi2']:.4f}, max |Δmax_pull| = {s['max_d_max_pull']:.4f} "
        f"(both unrounded: {s['max_raw_d_chi2']:.2e}, {s['max_raw_d_max_pull']:.2e})"
    )


def print_table(res: dict[str, Any]) -> None:
    w = max([9] + [len(r["histogram"]) for r in res["rows"]])
    print(
        f"{'histogram':<{w}} {'A chi2':>9} {'our chi2':>11} {'|Δ|':>6} {'raw|Δ|':>8} "
        f"{'A pull':>8} {'our pull':>10} {'|Δ|':>6} {'raw|Δ|':>8}  ours     agree"
    )
    print(
        f"{'':<{w}} {'(2 dp)':>9} {'':>11} {'(2 dp)':>6} {'unround':>8} {'(2 dp)':>8} {'':>10} {'(2 dp)':>6} {'unround':>8}"
    )
    for r in res["rows"]:
        print(
            f"{r['histogram']:<{w}} {r['autodqm_chi2']:9.2f} {r['ours_chi2']:11.4f} "
            f"{r['d_chi2']:6.2f} {r['raw_d_chi2']:8.1e} {r['autodqm_max_pull']:8.2f} "
            f"{r['ours_max_pull']:10.4f} {r['d_max_pull']:6.2f} {r['raw_d_max_pull']:8.1e}  "
            f"{r['status']:<8} {'yes' if r['agree'] else 'NO'}"
        )
    for title, key in (
        ("AutoDQM returned None (no result)", "autodqm_none"),
        ("AutoDQM raised, or ours has no score", "errors"),
        ("compared by us only (AutoDQM's matching left them out)", "only_ours"),
    ):
        if res[key]:
            print(f"\n{title}:")
            for r in res[key]:
                extra = f"  AutoDQM: {r['autodqm']}" if r.get("autodqm") else ""
                print(f"  {r['histogram']}: ours {r['ours']}{extra}")
    print("\n" + summary_line(res["summary"]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--autodqm", type=Path, help="AutoDQM checkout (plugins/, autodqm/)")
    p.add_argument("--config", type=Path, help="AutoDQM subsystem config, e.g. CSC.json")
    p.add_argument("--data", type=Path, help="data run DQM file")
    p.add_argument("--refs", type=Path, nargs="+", help="reference run DQM files")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--make-data", type=Path, metavar="DIR", help="write test files and exit")
    args = p.parse_args(argv)
    if args.make_data:
        from autodqm_parity_data import make_data

        for f in make_data(args.make_data):
            print(f)
        return 0
    if not (args.autodqm and args.config and args.data and args.refs):
        p.error("--autodqm, --config, --data and --refs are required")
    func = load_autodqm(args.autodqm.resolve())
    ours, inputs = run_ours(args.config, args.data, args.refs)
    config = json.loads(args.config.read_text())
    with uproot.open(args.data) as d:
        rfs = [uproot.open(r) for r in args.refs]
        try:
            pairs = autodqm_histpairs(config, d, rfs, inputs.data_run, list(inputs.reference_runs))
            theirs = run_autodqm(func, pairs)
            raw = run_autodqm(func, pairs, unrounded=True)
        finally:
            for f in rfs:
                f.close()
    res = compare(theirs, raw, ours)
    res["summary"].update(
        config=str(args.config),
        data_run=inputs.data_run,
        reference_runs=list(inputs.reference_runs),
    )
    if args.json:
        print(json.dumps(res, indent=1, default=str))
    else:
        print_table(res)
    s = res["summary"]
    return 0 if s["agree"] == s["reported"] and not s["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
