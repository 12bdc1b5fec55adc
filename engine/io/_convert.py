"""Engine layer: turn an uproot histogram model into :class:`~engine.types.HistData`.

Uses uproot's public model calls (``values``, ``variances``, ``counts``, ``member``,
``TAxis.edges``); never ``to_hist()``, which is slow and fails for TProfile2D.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine.types import FloatArray, HistData, HistKind

#: ROOT classes read as histograms, and the kind each becomes.
HISTOGRAM_CLASSES: Mapping[str, HistKind] = {
    **{f"TH1{t}": HistKind.TH1 for t in "FDISC"},
    **{f"TH2{t}": HistKind.TH2 for t in "FDISC"},
    "TProfile": HistKind.PROFILE,
    "TProfile2D": HistKind.PROFILE2D,
}

_AXES = ("fXaxis", "fYaxis")


def _f64(a: Any) -> FloatArray:
    return np.ascontiguousarray(a, dtype=np.float64)


def place_labels(texts: Sequence[str], bins: Sequence[int], nbins: int) -> tuple[str, ...] | None:
    """Per-bin labels from ROOT's stored ones (``texts``, 1-based ``bins``), or None.

    ROOT stores only the labelled bins, each TObjString carrying its 1-based bin number
    in ``fUniqueID``; unlabelled bins come back as ``""``. Files whose labels lack bin
    numbers (``bins`` empty or out of range) but label every bin are read in order.
    """
    if not texts:
        return None
    out = [""] * nbins
    if bins and all(1 <= b <= nbins for b in bins):
        for b, text in zip(bins, texts, strict=True):
            out[b - 1] = text
    elif len(texts) == nbins:
        out = list(texts)
    else:
        return None
    return tuple(out)


def axis_labels(axis: Any) -> tuple[str, ...] | None:
    """Bin labels of a TAxis model, or None if it has none (see :func:`place_labels`)."""
    labels = axis.member("fLabels", none_if_missing=True)
    if labels is None or len(labels) == 0:
        return None
    nbins = int(axis.member("fNbins"))
    texts = [str(s) for s in labels]
    try:
        bins = [int(s.member("@fUniqueID")) for s in labels]
    except (AttributeError, KeyError, TypeError, ValueError):
        bins = []
    return place_labels(texts, bins, nbins)


def to_histdata(obj: Any, kind: HistKind, path: str, run: int) -> HistData:
    """Convert one uproot TH1*/TH2*/TProfile/TProfile2D model to :class:`HistData`.

    Args:
        obj: The uproot model, as returned by ``key.get()``.
        kind: Its kind, from :data:`HISTOGRAM_CLASSES`.
        path: ``HistData.path``.
        run: ``HistData.run``.

    Returns:
        Arrays without flow bins, 2D indexed ``[x, y]``; for profiles the means, the
        squared errors on the means (uproot's default error mode, ROOT's ``""``) and
        the effective entries per bin.
    """
    ndim = 2 if kind in (HistKind.TH2, HistKind.PROFILE2D) else 1
    axes = [obj.member(a) for a in _AXES]
    values = _f64(obj.values())
    variances = _f64(obj.variances())
    bin_entries = _f64(obj.counts()) if kind in (HistKind.PROFILE, HistKind.PROFILE2D) else None
    return HistData(
        path=path,
        run=run,
        values=values,
        variances=variances,
        edges=tuple(_f64(ax.edges()) for ax in axes[:ndim]),
        title=str(obj.member("fTitle")),
        kind=kind,
        entries=float(obj.member("fEntries")),
        bin_entries=bin_entries,
        labels=tuple(axis_labels(ax) for ax in axes[:ndim]),
        axis_titles=tuple(str(ax.member("fTitle")) for ax in axes),
    )
