"""Dashboard layer: ad-hoc comparisons — what can be chosen, input checks, the run itself.

No Dash here: :mod:`dashboard.pages.compare` builds the form and the background
callback on these. :func:`run_comparison` may run in a forked process (Dash's
``DiskcacheManager``): it opens its own store connection and its own data source and
never touches the parent's.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dashboard.queries import parse_run
from dashboard.state import AppState, BadInput
from engine.registry import Registry
from engine.runner import compare_files
from engine.service_config import make_source
from engine.service_work import Watched, choose_references
from engine.sources.base import RunFile, Source
from engine.store import open_store
from engine.times import utc_iso, utcnow

logger = logging.getLogger(__name__)

#: What ``set_progress`` receives: (percent, words).
Progress = Callable[[tuple[int, str]], None]
JOB_ID = re.compile(r"^[0-9a-f]{12}$")
NEEDS_CONFIG = (
    "Ad-hoc comparisons need the service config (its watches name the datasets and "
    "subsystems): start the dashboard with `autodqm serve --config FILE` or `autodqm demo`. "
    "From the command line: `autodqm compare DATA.root REF.root --subsystem NAME`."
)


@dataclass(frozen=True, slots=True)
class Request:
    """A checked ad-hoc comparison: one subsystem of a data run against reference runs."""

    dataset: str
    subsystem: str
    data_run: int
    ref_runs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Choices:
    """What the form offers: the watched subsystems, their datasets and the data source."""

    watched: dict[str, Watched]
    source: Source
    registry: Registry

    @classmethod
    def of(cls, st: AppState, *, fresh_source: bool = False) -> Choices:
        """The choices of an app (BadInput without a service config).

        Args:
            st: The app state.
            fresh_source: A new data source (in a forked process: no shared sessions).
        """
        service = st.service()
        if service is None or st.config is None:
            raise BadInput(NEEDS_CONFIG, 409)
        source = make_source(st.config) if fresh_source else service.source
        return cls(service.watched, source, service.registry)

    def datasets(self) -> list[str]:
        """Watched datasets ("Run2022/SingleMuon"), config order."""
        return list(dict.fromkeys(w.dataset for w in self.watched.values()))

    def subsystems(self, dataset: str) -> list[str]:
        """Subsystems watched in ``dataset``."""
        return [n for n, w in self.watched.items() if w.dataset == dataset]

    def files(self, subsystem: str) -> dict[int, RunFile]:
        """The DQM file of each run the source has for the subsystem's dataset."""
        w = self.watched[subsystem]
        return self.source.runs(w.series, w.sample, w.processing)


def _span(files: dict[int, RunFile]) -> str:
    if not files:
        return "the source has no run of it yet"
    return f"the source has {len(files)} runs, {min(files)} to {max(files)}"


def _run(text: Any, what: str) -> int:
    try:
        return parse_run(text if isinstance(text, int) else str(text))
    except BadInput as err:
        msg = f"{what}: {err}"
        raise BadInput(msg) from None


def check_request(
    choices: Choices, dataset: str | None, subsystem: str | None, run: Any, refs: Sequence[Any]
) -> Request:
    """The form's values as a :class:`Request`; :class:`BadInput` saying what to fix."""
    datasets = choices.datasets()
    if not dataset or dataset not in datasets:
        msg = f"Dataset {dataset!r}: choose one of the watched datasets ({', '.join(datasets)})"
        raise BadInput(msg)
    subs = choices.subsystems(dataset)
    if not subsystem or subsystem not in subs:
        msg = f"Subsystem {subsystem!r}: choose one watched in {dataset} ({', '.join(subs)})"
        raise BadInput(msg)
    if run is None or run == "":
        msg = "Data run: choose the run to check"
        raise BadInput(msg)
    data_run = _run(run, "Data run")
    files = choices.files(subsystem)
    if data_run not in files:
        msg = f"Data run {data_run} has no DQM file in {dataset}; {_span(files)}"
        raise BadInput(msg, 404)
    if not refs:
        msg = "Reference runs: choose at least one (Suggest fills in the policy's choice)"
        raise BadInput(msg)
    ref_runs = tuple(dict.fromkeys(_run(r, "Reference run") for r in refs))
    if data_run in ref_runs:
        msg = (
            f"Reference run {data_run} is the data run itself: a run compared with itself "
            "shows nothing; choose other runs (Suggest proposes some)"
        )
        raise BadInput(msg)
    absent = [r for r in ref_runs if r not in files]
    if absent:
        listed = ", ".join(map(str, absent))
        msg = f"Reference run(s) {listed}: no DQM file in {dataset}; {_span(files)}"
        raise BadInput(msg, 404)
    return Request(dataset, subsystem, data_run, ref_runs)


def suggest(st: AppState, choices: Choices, subsystem: str, run: int) -> tuple[list[int], str]:
    """The reference runs the subsystem's policy picks for ``run`` among certified runs,
    and why (the same choice the scheduler makes)."""
    service = st.service()
    assert service is not None  # Choices.of checked it
    w = choices.watched[subsystem]
    choice = choose_references(st.store, w, run, service.certified_runs(), choices.files(subsystem))
    why = f"{choice.policy or w.policy.name}: {choice.reason}"
    return list(choice.runs), why


def run_comparison(
    st: AppState, progress: Progress, req: Request, choices: Choices, user: str = ""
) -> str:
    """Fetch the files, compare, store the result under a new job id; the job id.

    Reports progress as (percent, words). Opens its own store connection.
    """
    t0 = time.perf_counter()
    files = choices.files(req.subsystem)
    runs = (req.data_run, *req.ref_runs)
    paths = []
    for i, r in enumerate(runs):
        progress((5 + 45 * i // len(runs), f"fetching file {i + 1} of {len(runs)} (run {r})"))
        paths.append(choices.source.fetch(files[r]))
    n = len(req.ref_runs)
    progress((55, f"comparing run {req.data_run} with {n} reference run{'s' * (n != 1)}"))
    report = compare_files(
        choices.watched[req.subsystem].config,
        choices.registry,
        paths[0],
        paths[1:],
        data_run=req.data_run,
        ref_runs=req.ref_runs,
        workers=1,
    )
    progress((95, "storing the result"))
    job = uuid.uuid4().hex[:12]
    record = {
        "job": job,
        "created": utc_iso(utcnow()),
        "by": user,
        "dataset": req.dataset,
        "subsystem": req.subsystem,
        "data_run": req.data_run,
        "reference_runs": list(req.ref_runs),
        "seconds": round(time.perf_counter() - t0, 3),
        "report": report.to_dict(),
        "notes": list(report.notes),
    }
    with open_store(st.store.directory) as store:
        store.put_adhoc(job, record)
        store.log(
            {
                "action": "compare",
                "by": user or "anonymous",
                "job": job,
                "run": req.data_run,
                "subsystem": req.subsystem,
            }
        )
    progress((100, "done"))
    logger.info(
        "ad-hoc comparison %s: run %d %s vs %s in %.1f s",
        job,
        req.data_run,
        req.subsystem,
        req.ref_runs,
        record["seconds"],
    )
    return job


def get_result(st: AppState, job: str | None) -> dict[str, Any]:
    """The stored ad-hoc comparison ``job``; BadInput (400/404) with what to do instead."""
    if not job or not JOB_ID.match(job):
        msg = (
            f"{job!r} is not a comparison id: expected the 12 hexadecimal characters "
            "the compare page gave, as in /compare/3f2a9c0d1e4b"
        )
        raise BadInput(msg, 400)
    record = st.store.get_adhoc(job)
    if record is None:
        msg = (
            f"no ad-hoc comparison {job!r} is stored in this dashboard's results store; "
            "start a new one at /compare"
        )
        raise BadInput(msg, 404)
    return record
