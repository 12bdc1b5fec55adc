"""Shared pytest fixtures: histogram factories and small DQM ROOT files written on the fly."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import ArrayLike

from engine.io import write_dqm
from engine.types import HistData, HistKind

DEFAULT_FILE_NAME = "DQM_V0001_R000000001__SingleMuon__Run2022C-PromptReco-v1__DQMIO.root"


def build_hist(
    values: ArrayLike,
    run: int = 1,
    *,
    edges: Sequence[ArrayLike] | None = None,
    path: str = "h",
    kind: HistKind | None = None,
    variances: ArrayLike | None = None,
    bin_entries: ArrayLike | None = None,
    labels: Sequence[Sequence[str] | None] = (),
    title: str = "",
    axis_titles: Sequence[str] = (),
    entries: float | None = None,
) -> HistData:
    """A :class:`HistData` from plain numbers, with test-friendly defaults.

    Args:
        values: Bin contents (1D, or 2D indexed ``[x, y]``); profile means for profiles.
        run: Run number.
        edges: One edges array per axis; default ``arange(n + 1)`` per axis.
        path: ``HistData.path``.
        kind: Default TH1 for 1D values, TH2 for 2D.
        variances: Default: equal to ``values`` (Poisson counts).
        bin_entries: Per-bin entries (profiles).
        labels: Per-axis bin labels (or None for an axis without labels).
        title: Histogram title.
        axis_titles: (x, y) axis titles.
        entries: ``fEntries``; default the sum of values (or of bin_entries for profiles).
    """
    v = np.asarray(values, dtype=np.float64)
    if kind is None:
        kind = HistKind.TH2 if v.ndim == 2 else HistKind.TH1
    e = (
        tuple(np.arange(n + 1, dtype=np.float64) for n in v.shape)
        if edges is None
        else tuple(np.asarray(x, dtype=np.float64) for x in edges)
    )
    var = v.copy() if variances is None else np.asarray(variances, dtype=np.float64)
    be = None if bin_entries is None else np.asarray(bin_entries, dtype=np.float64)
    if entries is None:
        entries = float(np.sum(be if be is not None else v))
    return HistData(
        path=path,
        run=run,
        values=v,
        variances=var,
        edges=e,
        title=title,
        kind=kind,
        entries=entries,
        bin_entries=be,
        labels=tuple(None if lab is None else tuple(lab) for lab in labels),
        axis_titles=tuple(axis_titles),
    )


@pytest.fixture
def make_hist() -> Callable[..., HistData]:
    """Factory ``make_hist(values, run=1, *, edges=None, path="h", kind=None, ...)``.

    Builds a :class:`HistData` (see :func:`build_hist`): kind inferred from
    ``values.ndim``, edges default to ``arange(n + 1)`` per axis, variances to values.
    """
    return build_hist


@pytest.fixture
def root_file(tmp_path: Path) -> Callable[..., Path]:
    """Factory ``root_file(hists, name=<offline DQM name, run 1>, strings=()) -> Path``.

    Writes ``hists`` (in-file path -> HistData) and the DQM scalar keys ``strings``
    (``(directory, key name)`` pairs) with :func:`engine.io.write_dqm` into ``tmp_path``.
    """

    def factory(
        hists: Mapping[str, HistData],
        name: str = DEFAULT_FILE_NAME,
        strings: Iterable[tuple[str, str]] = (),
    ) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_dqm(path, hists, strings=strings)
        return path

    return factory


def dqm_path_of(run: int, subsystem: str, rel: str = "") -> str:
    """In-file path ``"DQMData/Run {run}/{subsystem}/Run summary/{rel}"``."""
    return f"DQMData/Run {run}/{subsystem}/Run summary/{rel}"


@pytest.fixture
def dqm_path() -> Callable[..., str]:
    """Function ``dqm_path(run, subsystem, rel="")`` giving the DQM in-file path."""
    return dqm_path_of


@pytest.fixture(autouse=True)
def _results_store_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """Commands that keep decoded files (``autodqm compare``) write to a throw-away
    results store, never to ``var/cache`` of the directory the tests run from."""
    monkeypatch.setenv("AUTODQM_CACHE_DIR", str(tmp_path_factory.mktemp("store")))
