"""Plugins layer: small helpers shared by the comparators (no I/O; numpy only)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from engine.types import ComparisonResult, FloatArray, HistData, Status


def result(
    comp: str,
    data: HistData,
    status: Status,
    *,
    score: float = 0.0,
    threshold: float | None = None,
    reason: str = "",
    scores: Mapping[str, float] | None = None,
    arrays: Mapping[str, FloatArray] | None = None,
) -> ComparisonResult:
    """Build a result with the entries of ``data`` (its finite bins) and a finite score."""
    counts = data.counts
    entries = float(counts.sum())
    if not math.isfinite(entries):
        entries = float(np.nansum(np.where(np.isfinite(counts), counts, 0.0)))
    return ComparisonResult(
        comparator=comp,
        path=data.path,
        status=status,
        score=float(score) if math.isfinite(score) else 0.0,
        threshold=threshold,
        reason=reason,
        scores=dict(scores or {}),
        entries=entries,
        arrays=dict(arrays or {}),
    )


def skipped(comp: str, data: HistData, reason: str) -> ComparisonResult:
    """A ``SKIPPED`` result with its reason (a comparator never returns None)."""
    return result(comp, data, Status.SKIPPED, reason=reason)


def same_binning(a: HistData, b: HistData) -> bool:
    """True when both histograms have the same shape and bin edges (to 1e-9 relative)."""
    if a.values.shape != b.values.shape or len(a.edges) != len(b.edges):
        return False
    for ea, eb in zip(a.edges, b.edges, strict=True):
        if ea is eb:
            continue
        if ea.shape != eb.shape:
            return False
        # bitwise equality is the usual case, and 100x cheaper than allclose
        if ea.tobytes() != eb.tobytes() and not np.allclose(ea, eb, rtol=1e-9, atol=0.0):
            return False
    return True


def usable_refs(data: HistData, refs: Sequence[HistData]) -> tuple[list[HistData], list[str]]:
    """References with the data's binning and non-zero entries, and why others were dropped."""
    keep: list[HistData] = []
    dropped: list[str] = []
    for r in refs:
        if not same_binning(data, r):
            dropped.append(
                f"run {r.run}: binning {r.values.shape} differs from data {data.values.shape}"
            )
        elif float(r.counts.sum()) <= 0:  # r.total, without np.sum's overhead
            dropped.append(f"run {r.run}: no entries")
        else:
            keep.append(r)
    return keep, dropped


def has_profile_errors(h: HistData) -> bool:
    """A profile with per-bin entries and errors on its means, all of its shape."""
    return (
        h.is_profile
        and h.bin_entries is not None
        and h.variances is not None
        and h.bin_entries.shape == h.values.shape == h.variances.shape
    )


def no_reference_reason(dropped: Sequence[str]) -> str:
    """Reason text for a comparison that has no usable reference."""
    if not dropped:
        return "no usable reference: none given"
    return "no usable reference: " + "; ".join(dropped)


def too_few_entries(comp: str, data: HistData, n: float, min_entries: float) -> ComparisonResult:
    """The ``SKIPPED`` result for a histogram with fewer than ``min_entries`` entries."""
    return skipped(comp, data, f"{n:.0f} entries < min_entries={min_entries:g}")
