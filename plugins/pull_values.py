"""Plugins layer: ``pull_values``, AutoDQM's bin-by-bin pull test for 2D histograms.

Also home of :func:`bin_location`, the "where" phrase the comparators put in reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import gammaincinv

from engine.types import ComparisonResult, FloatArray, HistData, Status
from plugins._common import no_reference_reason, result, skipped, too_few_entries, usable_refs
from plugins._numerics import Q_HIGH, Q_LOW, poisson_side_error

NORM_TYPES = ("all", "row", "col")


def bin_location(data: HistData, index: Sequence[int]) -> str:
    """Describe one bin for a reason: index, then label or edge range per axis.

    Args:
        data: The histogram the index refers to (for its edges and labels).
        index: One index per axis, e.g. ``(12, 3)``.

    Returns:
        Text such as ``"bin (12, 3) [x 1.2 to 1.3, y 'ME+1/2']"``.
    """
    parts = []
    for axis, k in enumerate(index):
        name = "xyz"[axis] if axis < 3 else f"axis {axis}"
        labels = data.labels[axis] if axis < len(data.labels) else None
        if labels and 0 <= k < len(labels) and labels[k]:
            parts.append(f"{name} {labels[k]!r}")
        elif axis < len(data.edges) and 0 <= k < len(data.edges[axis]) - 1:
            lo, hi = data.edges[axis][k], data.edges[axis][k + 1]
            parts.append(f"{name} {lo:.4g} to {hi:.4g}")
    idx = str(index[0]) if len(index) == 1 else "(" + ", ".join(str(i) for i in index) + ")"
    return f"bin {idx}" + (f" [{', '.join(parts)}]" if parts else "")


def poisson_error(m: FloatArray, q: FloatArray) -> FloatArray:
    """One side of AutoDQM's asymmetric Poisson error, ``|chi2.ppf(q, 2m)/2 - 1 - m|``.

    AutoDQM computes ``chi2.interval(0.6827, 2m)`` (``q`` = 0.15865 for the low end,
    0.84135 for the high one) with ``2m`` degrees of freedom at both ends and subtracts
    ``1 + m`` from both, so for large ``m`` the low error is about ``sqrt(m) + 1`` and the
    high one ``sqrt(m) - 1``. Where ``m <= 0`` scipy gives ``nan``, which AutoDQM turns
    into 0; so does this function. For those two ``q`` it is
    :func:`plugins._numerics.poisson_side_error` (tables and series, within 4e-10 of
    scipy); any other ``q`` goes to ``scipy.special.gammaincinv``.

    Args:
        m: Bin contents (any shape, may be non-integer after normalisation).
        q: Quantile per bin (broadcast against ``m``).

    Returns:
        The errors, finite and >= 0, shaped like ``m``.
    """
    m, q = np.broadcast_arrays(np.asarray(m, dtype=np.float64), np.asarray(q, dtype=np.float64))
    high = q == Q_HIGH
    fast = high | (q == Q_LOW)
    if fast.all():  # the two quantiles AutoDQM uses: tables and series (plugins._common)
        return poisson_side_error(m, high)
    err = poisson_side_error(np.where(fast, m, 0.0), high)
    other = ~fast & (m > 0)
    err[other] = np.abs(gammaincinv(m[other], q[other]) - 1.0 - m[other])
    return err


def poisson_errors(m: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(low, high)`` AutoDQM Poisson errors of ``m``; see :func:`poisson_error`."""
    return poisson_error(m, np.array(Q_LOW)), poisson_error(m, np.array(Q_HIGH))


def _row_scale(d: FloatArray, r: FloatArray, axis: int) -> FloatArray:
    """Per-line factors ``sum(R)/sum(D)`` along ``axis``; 1 where either sum is not > 0."""
    ds = d.sum(axis=axis, keepdims=True)
    rs = r.sum(axis=axis, keepdims=True)
    ok = (ds > 0) & (rs > 0)
    return np.where(ok, rs / np.where(ok, ds, 1.0), 1.0)


@dataclass(frozen=True, slots=True)
class PullValues:
    """Bin-by-bin pulls between a 2D histogram and one reference (AutoDQM ``pull_values``).

    The data is normalised to the reference (whole histogram, or per row/column), each
    bin gets ``pull = (D - R) / sqrt(eD**2 + eR**2)`` with AutoDQM's asymmetric Poisson
    errors (data-low/ref-high where ``D >= R``, data-high/ref-low where ``D < R``; 0 where
    both errors are 0). ``chi2`` is the mean squared pull over all bins and ``max_pull``
    the largest ``|pull|`` (dimensionless, roughly in sigmas). Flagged when the data has
    at least ``min_entries`` entries and ``chi2 > chi2_cut`` or ``max_pull > pull_cut``.
    ``score`` is ``max(chi2/chi2_cut, max_pull/pull_cut)`` (> 1 means flagged).

    Kept from AutoDQM so its tuned cuts keep their meaning: the scaled data is given
    Poisson errors as if it were counts, so against a reference k times larger the data
    errors are sqrt(k) too small and ``chi2`` of consistent histograms is about
    ``(k + 1) / 2`` rather than 1. Bin contents are rounded to integers first (STATS.md).

    With one reference this is AutoDQM's test. With several, each is tried and the one
    giving the smallest ``score`` decides (the reason names it): a histogram is flagged
    only when it differs from every reference, so one atypical reference run can neither
    raise a false alarm nor hide a failure.
    ``norm_type="row"`` scales each row (fixed y index, summed over x) of the data to the
    reference's row sum, ``"col"`` each column (fixed x); a row whose data or reference
    sum is not positive is left unscaled. ``arrays["pulls"]`` is uncapped; ``pull_cap``
    only sets the plots' colour range.
    """

    name: ClassVar[str] = "pull_values"
    plot_kind: ClassVar[str] = "pull_map"
    dims: ClassVar[tuple[int, ...]] = (2,)

    pull_cap: float = 25.0
    chi2_cut: float = 500.0
    pull_cut: float = 20.0
    min_entries: float = 10_000
    norm_type: str = "all"

    def __post_init__(self) -> None:
        if self.norm_type not in NORM_TYPES:
            msg = (
                f"pull_values: norm_type must be one of {NORM_TYPES!r}, got {self.norm_type!r};"
                " set it to 'all', 'row' or 'col'"
            )
            raise ValueError(msg)
        for key in ("pull_cap", "chi2_cut", "pull_cut"):
            value = getattr(self, key)
            if not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
                msg = f"pull_values: {key} must be a positive number, got {value!r}"
                raise ValueError(msg)
        if not (isinstance(self.min_entries, int | float) and self.min_entries >= 0):
            msg = f"pull_values: min_entries must be a number >= 0, got {self.min_entries!r}"
            raise ValueError(msg)

    def _pulls(
        self, d: FloatArray, r: FloatArray, n: float
    ) -> tuple[FloatArray, FloatArray, float, float, tuple[int, ...], float]:
        """(scale, pulls, chi2, max |pull|, worst bin, score) of data ``d`` against ``r``."""
        n_ref = float(r.sum())
        if self.norm_type == "row":
            scale = _row_scale(d, r, axis=0)
        elif self.norm_type == "col":
            scale = _row_scale(d, r, axis=1)
        else:
            scale = np.array(n_ref / n if n > 0 else 1.0)
        dn = d * scale
        above = dn >= r  # data-low/ref-high errors here, data-high/ref-low elsewhere
        err2 = np.square(poisson_side_error(dn, ~above))
        err2 += np.square(poisson_side_error(r, above))
        if err2.min() > 0:  # the usual case: no bin with both errors 0
            pulls = np.subtract(dn, r)
            pulls /= np.sqrt(err2, out=err2)
        else:
            pulls = np.where(err2 > 0, (dn - r) / np.sqrt(np.where(err2 > 0, err2, 1.0)), 0.0)
        chi2 = float(np.dot(pulls.ravel(), pulls.ravel())) / pulls.size
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(pulls))), pulls.shape))
        max_pull = float(np.abs(pulls[worst]))
        return (
            scale,
            pulls,
            chi2,
            max_pull,
            worst,
            max(chi2 / self.chi2_cut, max_pull / self.pull_cut),
        )

    def compare(self, data: HistData, refs: Sequence[HistData]) -> ComparisonResult:
        """Compare ``data`` with its closest usable reference; see the class docstring."""
        if data.ndim != 2:
            return skipped(self.name, data, f"needs a 2D histogram, got {data.ndim}D")
        usable, dropped = usable_refs(data, refs)
        if not usable:
            return skipped(self.name, data, no_reference_reason(dropped))
        d = np.rint(np.asarray(data.counts, dtype=np.float64))
        n = float(d.sum())
        if 0 < n < self.min_entries:
            return too_few_entries(self.name, data, n, self.min_entries)
        fits = []
        for ref in usable:
            r = np.rint(np.asarray(ref.counts, dtype=np.float64))
            if r.sum() > 0:  # entries that round to nothing are unusable
                fits.append((ref.run, r, *self._pulls(d, r, n)))
        if not fits:
            return skipped(self.name, data, "no usable reference: references round to empty")
        # the closest reference decides: one atypical reference neither raises nor hides a flag
        run, r, scale, pulls, chi2, max_pull, worst, score = min(fits, key=lambda f: f[-1])
        n_ref = float(r.sum())
        which = f"run {run}"
        if len(fits) > 1:
            which += f" (the closest of {len(fits)} references)"
        where = bin_location(data, tuple(int(i) for i in worst))
        arrays = {
            "pulls": pulls,
            "ref": np.broadcast_to(r / scale, d.shape).copy() if scale.ndim else r / scale,
        }
        scores = {"chi2": chi2, "max_pull": max_pull}
        if n <= 0:
            return result(
                self.name,
                data,
                Status.FLAGGED,
                score=max(score, 1.0),
                threshold=1.0,
                reason=f"no entries in data, references have {n_ref:.0f} ({which})",
                scores=scores,
                arrays=arrays,
            )
        flagged = score > 1.0
        pull_cmp = ">" if max_pull > self.pull_cut else "<="
        chi2_cmp = ">" if chi2 > self.chi2_cut else "<="
        reason = (
            f"max pull {max_pull:.3g} {pull_cmp} {self.pull_cut:g} at {where}, "
            f"chi2 {chi2:.3g} {chi2_cmp} {self.chi2_cut:g}, against {which}"
        )
        return result(
            self.name,
            data,
            Status.FLAGGED if flagged else Status.OK,
            score=score,
            threshold=1.0,
            reason=reason,
            scores=scores,
            arrays=arrays,
        )
