"""Engine layer (demo data): sample the runs' histograms and write the demo directory.

Everything up to :func:`write_run` is a pure function of ``(seed, options)``: the run
list and the failures come from :func:`plan`, each histogram from its own generator
seeded by ``(seed, run, subsystem, histogram)``, so the same seed gives identical files
and a failure changes nothing but the histogram it is injected into.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from engine.demo import inject, runs
from engine.demo.catalog import DemoError, HistSpec, Subsystem, names, resolve
from engine.demo.shapes import sigma_bins, wobble
from engine.io import write_dqm
from engine.types import FloatArray, HistData

logger = logging.getLogger(__name__)

#: Relative size of the smooth run-to-run shape distortion (per harmonic and axis) ...
WOBBLE = 0.01
#: ... of the independent per-bin jitter, of the peak position jitter (in peak widths),
#: of the width jitter, and of the efficiency (profile mean) jitter.
JITTER, PEAK_JITTER, WIDTH_JITTER, MEAN_JITTER = 0.003, 0.01, 0.001, 0.003
#: Run-to-run spread (log-normal sigma) of a noisy channel's rate (``noisy_channels``).
NOISY_SPREAD = 0.3
MANIFEST = "demo-data.json"
OUTPUTS = ("golden.json", "truth.json", "runs.json", MANIFEST)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What to generate: ``subsystems`` empty means all; ``failure_fraction`` of the
    normal-statistics runs get 1-3 injected failures each; ``noisy_channels`` of the bins
    of every 2D map are noisy channels, the same ones in every run, whose rate changes
    from run to run by a factor of spread ``NOISY_SPREAD`` (0: none, the default)."""

    runs: int = 30
    seed: int = 1
    subsystems: tuple[str, ...] = ()
    failure_fraction: float = 0.4
    noisy_channels: float = 0.0


@dataclass(frozen=True, slots=True)
class DemoPlan:
    """The run list and the injected failures, before any histogram is sampled."""

    options: DemoOptions
    subsystems: tuple[str, ...]
    runs: tuple[runs.RunInfo, ...]
    failures: tuple[inject.Failure, ...]

    def failures_of(self, run: int) -> list[inject.Failure]:
        return [f for f in self.failures if f.run == run]


@dataclass(frozen=True, slots=True)
class DemoSummary:
    out: Path
    runs: int
    histograms: int
    failures: int
    seconds: float
    files: tuple[Path, ...] = field(default=())


def plan(options: DemoOptions) -> DemoPlan:
    """Choose runs and failures for ``options`` (pure).

    Raises:
        DemoError: A non-positive run count, a failure fraction outside [0, 1], or an
            unknown subsystem.
    """
    if options.runs < 1:
        msg = f"--runs must be a positive number of runs, got {options.runs!r}"
        raise DemoError(msg)
    if not 0.0 <= options.failure_fraction <= 1.0:
        msg = f"failure fraction must be in [0, 1], got {options.failure_fraction!r}"
        raise DemoError(msg)
    if not 0.0 <= options.noisy_channels <= 0.5:
        msg = f"noisy-channel fraction must be in [0, 0.5], got {options.noisy_channels!r}"
        raise DemoError(msg)
    subs = resolve(options.subsystems)
    rng = np.random.default_rng([options.seed, 0])
    run_list = runs.plan_runs(rng, options.runs)
    eligible = [r for r in run_list if not r.low_stats]
    k = round(options.failure_fraction * len(eligible))
    chosen = sorted(rng.choice(len(eligible), k, replace=False)) if k else []
    targets = [(eligible[i].run, eligible[i].lumi) for i in chosen]
    failures = inject.plan_failures(np.random.default_rng([options.seed, 1]), targets, subs)
    failed = {f.run for f in failures}
    run_list = [replace(r, healthy=r.run not in failed) for r in run_list]
    return DemoPlan(options, tuple(s.name for s in subs), tuple(run_list), tuple(failures))


def expected(spec: HistSpec, failures: Sequence[inject.Failure], shift: float = 0.0,
             scale: float = 1.0) -> FloatArray:  # fmt: skip
    """Expected fraction of a healthy run's entries per bin, with ``failures`` applied
    (profiles: entries only). ``shift``/``scale`` add to what the failures ask."""
    f_shift, f_scale = inject.shape_args(failures)
    dens = spec.shape(shift + f_shift, scale * f_scale)
    dens = dens / dens.sum()
    if spec.is_profile:
        return inject.apply_profile(dens, np.ones_like(dens), failures)[0]
    return inject.apply_counts(dens, failures)


def noisy_factor(
    spec: HistSpec, seed: int, fraction: float, rng: np.random.Generator
) -> FloatArray:
    """This run's rate factors of a map's noisy channels (1 elsewhere; 2D maps only).

    Which bins are noisy depends on the seed and the histogram only, so they are the same
    in every run; how noisy each is this run comes from the run's ``rng``.
    """
    out = np.ones(spec.bins)
    if fraction <= 0 or len(spec.bins) != 2 or spec.is_profile:
        return out
    fixed = np.random.default_rng([seed, 7, zlib.crc32(spec.path.encode())])
    k = max(1, round(fraction * out.size))
    chosen = fixed.choice(out.size, k, replace=False)
    out.flat[chosen] = rng.lognormal(0.0, NOISY_SPREAD, k)
    return out


def sample(
    spec: HistSpec, run: int, lumi: float, rng: np.random.Generator,
    failures: Sequence[inject.Failure] = (), noisy: tuple[int, float] = (0, 0.0),
) -> HistData:  # fmt: skip
    """One histogram of one run: expected shape x wobble x luminosity, then Poisson
    (``noisy``: ``(seed, fraction)`` of noisy channels, see :func:`noisy_factor`)."""
    shift = rng.normal(0.0, PEAK_JITTER) * sigma_bins(spec.shape)
    scale = 1.0 + rng.normal(0.0, WIDTH_JITTER)
    dens = expected(spec, failures, shift, scale) * wobble(rng, spec.bins, WOBBLE, JITTER)
    if noisy[1] > 0:
        dens = dens * noisy_factor(spec, noisy[0], noisy[1], rng)
    if not spec.is_profile:
        counts = rng.poisson(dens * spec.rate * lumi).astype(np.float64)
        return _hist(spec, run, counts, counts.copy())
    assert spec.mean is not None
    mean = spec.mean * (1.0 + rng.normal(0.0, MEAN_JITTER)) * rng.normal(1.0, 0.001, spec.bins)
    dens, mean = inject.apply_profile(dens, mean, failures)
    n = rng.poisson(dens * spec.rate * lumi).astype(np.float64)
    safe = np.maximum(n, 1.0)
    if spec.spread is None:  # an efficiency: pass/fail per entry
        m = rng.binomial(n.astype(np.int64), np.clip(mean, 0.0, 1.0)) / safe
        var = m * (1.0 - m) / safe
    else:
        m = rng.normal(mean, spec.spread / np.sqrt(safe))
        var = np.full(spec.bins, spec.spread**2) / safe
    m, var = np.where(n > 0, m, 0.0), np.where(n > 0, var, 0.0)
    return _hist(spec, run, m, var, n)


def _hist(spec: HistSpec, run: int, values: FloatArray, variances: FloatArray,
          bin_entries: FloatArray | None = None) -> HistData:  # fmt: skip
    entries = float((values if bin_entries is None else bin_entries).sum())
    return HistData(path=spec.path, run=run, values=values, variances=variances,
                    edges=spec.edges, title=spec.title, kind=spec.kind, entries=entries,
                    bin_entries=bin_entries, labels=spec.labels,
                    axis_titles=spec.axis_titles)  # fmt: skip


def build_run(p: DemoPlan, info: runs.RunInfo) -> dict[str, HistData]:
    """Every histogram of one run, keyed by its full in-file path (pure)."""
    fails = p.failures_of(info.run)
    out: dict[str, HistData] = {}
    for sub in resolve(p.subsystems):
        sub_index = names().index(sub.name)
        for i, spec in enumerate(sub.hists):
            rng = np.random.default_rng([p.options.seed, info.run, sub_index, i])
            mine = [f for f in fails if f.subsystem == sub.name and f.histogram == spec.path]
            noisy = (p.options.seed, p.options.noisy_channels)
            out[sub.full_path(info.run, spec.path)] = sample(spec, info.run, info.lumi, rng, mine,
                                                             noisy)  # fmt: skip
    return out


def scalars(subs: Sequence[Subsystem], info: runs.RunInfo) -> list[tuple[str, str]]:
    """DQM scalar keys (``<iRun>i=N</iRun>`` ...) for each subsystem's EventInfo folder."""
    dirs = dict.fromkeys(s.eventinfo_dir.format(info.run) for s in subs)
    keys = (f"<iRun>i={info.run}</iRun>", f"<iLumiSection>i={info.n_lumisections}</iLumiSection>")
    return [(d, k) for d in dirs for k in keys]


def write_run(out: Path, p: DemoPlan, index: int) -> tuple[Path, int]:
    """Sample and write run ``p.runs[index]``; returns the file and its histogram count."""
    info = p.runs[index]
    hists = build_run(p, info)
    path = out / info.path
    path.parent.mkdir(parents=True, exist_ok=True)
    write_dqm(path, hists, strings=scalars(resolve(p.subsystems), info))
    logger.info("run %d: %d histograms, %.1f pb-1 -> %s", info.run, len(hists), info.lumi, path)
    return path, len(hists)


def describe_existing(out: Path) -> str:
    """What the demo data set in ``out`` holds, in words (from its manifest and runs.json)."""
    try:
        manifest = json.loads((out / MANIFEST).read_text())
        numbers = [int(r["run"]) for r in json.loads((out / "runs.json").read_text())]
    except (OSError, ValueError, KeyError, TypeError):
        return f"a demo data set ({MANIFEST} present)"
    span = f"{min(numbers)}\N{EN DASH}{max(numbers)}" if numbers else "none"
    subsystems = ", ".join(str(n) for n in manifest.get("subsystems", ()))
    return (f"a demo data set of {len(numbers)} runs ({span}), seed {manifest.get('seed')}, "
            f"subsystems {subsystems}")  # fmt: skip


def _prepare(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        msg = f"output {str(out)!r} is a file; give a directory (new, empty or a previous demo)"
        raise DemoError(msg)
    if not out.exists() or not any(out.iterdir()):
        out.mkdir(parents=True, exist_ok=True)
        return
    if (out / MANIFEST).is_file():
        if not force:
            msg = (f"{str(out)!r} already holds {describe_existing(out)}; it is kept. Pass "
                   "--force to replace it, or give another directory")  # fmt: skip
            raise DemoError(msg)
        shutil.rmtree(out / "OfflineData", ignore_errors=True)
        for name in OUTPUTS:
            (out / name).unlink(missing_ok=True)
    elif not force:
        msg = (f"output directory {str(out)!r} is not empty and holds no {MANIFEST} from a "
               "previous demo-data run; choose another directory or pass --force")  # fmt: skip
        raise DemoError(msg)


def _dump(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=1) + "\n")


def generate(out: str | Path, options: DemoOptions, *, jobs: int = 2,
             force: bool = False) -> DemoSummary:  # fmt: skip
    """Write the demo directory: DQM files, ``golden.json``, ``truth.json``, ``runs.json``.

    Args:
        out: Output directory (created; must be new or empty unless ``force``).
        options: Runs, seed, subsystems, failure fraction.
        jobs: Worker processes for sampling/writing (1 = in this process).
        force: Replace a previous demo data set in ``out``, or write into a non-empty
            directory that is not one (its other files are kept).

    Raises:
        DemoError: Bad options or an unusable output directory.
    """
    t0 = time.perf_counter()
    p = plan(options)
    out = Path(out)
    _prepare(out, force)
    idx = range(len(p.runs))
    if jobs > 1 and len(p.runs) > 2:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(write_run, [out] * len(p.runs), [p] * len(p.runs), idx))
    else:
        results = [write_run(out, p, i) for i in idx]
    _dump(out / "runs.json", [r.to_dict() for r in p.runs])
    _dump(out / "truth.json", [f.to_dict() for f in p.failures])
    _dump(out / "golden.json", runs.golden_json(list(p.runs)))
    n_hists = sum(n for _, n in results)
    _dump(out / MANIFEST, {
        "generator": "autodqm demo-data", "seed": options.seed, "runs": len(p.runs),
        "subsystems": list(p.subsystems), "failure_fraction": options.failure_fraction,
        "noisy_channels": options.noisy_channels,
        "histograms_per_run": n_hists // len(p.runs),
        "dataset": {"series": runs.SERIES, "sample": runs.SAMPLE, "processing": runs.PROCESSING},
    })  # fmt: skip
    return DemoSummary(out, len(p.runs), n_hists, len(p.failures), time.perf_counter() - t0,
                       tuple(path for path, _ in results))  # fmt: skip
