"""Plugins layer: ``profile_pull``, bin-by-bin comparison of profile means (TProfile/2D)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from engine.types import ComparisonResult, HistData, Status
from plugins._common import (
    has_profile_errors,
    no_reference_reason,
    result,
    skipped,
    too_few_entries,
    usable_refs,
)
from plugins.pull_values import bin_location

#: Pulls beyond this are clipped, so that chi2 stays finite (any such pull is flagged).
_PULL_LIMIT = 1e100


@dataclass(frozen=True, slots=True)
class ProfilePull:
    """Pulls between the per-bin means of a profile and its references.

    ``pull = (m_D - m_R) / sqrt(e_D**2 + e_R**2)`` per bin, with ``e`` the profiles'
    errors on the mean (``HistData.variances``). Several references are combined into
    their entries-weighted mean ``m_R``; ``e_R**2`` is the error of that mean plus the
    spread of the reference means around it (the unbiased weighted variance, 0 for one
    reference) plus ``(tol * m_R)**2``. ``chi2`` is the mean squared pull over the bins
    used and ``max_pull`` the signed pull of largest magnitude, in Gaussian sigmas.

    Bins with fewer than ``min_bin_entries`` entries in the data or in the references
    together are not used (and never with zero entries): there the error on the mean is
    itself poorly known and pulls have long tails. Flagged when the data has at least
    ``min_entries`` entries and ``chi2 > chi2_cut`` or ``|max_pull| > pull_cut``;
    ``score = max(chi2/chi2_cut, |max_pull|/pull_cut)`` (> 1 means flagged).

    Defaults are set against false alarms on high-statistics profiles: their errors on
    the mean are tiny, so run-to-run changes in calibration or conditions would give
    large naive pulls. ``tol = 0.01`` sets a 1 % relative floor on the reference
    precision (as ``beta_binomial``'s ``tol`` does for counts); ``pull_cut = 6`` keeps
    the chance of one Gaussian bin passing it below 1e-5 for a 10,000-bin profile; and
    ``chi2_cut = 5`` flags a coherent shift of about 2.2 sigma in every bin.
    """

    name: ClassVar[str] = "profile_pull"
    plot_kind: ClassVar[str] = "profile"
    dims: ClassVar[tuple[int, ...]] = (1, 2)

    chi2_cut: float = 5.0
    pull_cut: float = 6.0
    tol: float = 0.01
    min_entries: float = 100
    min_bin_entries: float = 10

    def __post_init__(self) -> None:
        for key in ("chi2_cut", "pull_cut"):
            value = getattr(self, key)
            if not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
                msg = f"profile_pull: {key} must be a positive number, got {value!r}"
                raise ValueError(msg)
        for key in ("tol", "min_entries", "min_bin_entries"):
            value = getattr(self, key)
            if not (isinstance(value, int | float) and np.isfinite(value) and value >= 0):
                msg = f"profile_pull: {key} must be a number >= 0, got {value!r}"
                raise ValueError(msg)

    def compare(self, data: HistData, refs: Sequence[HistData]) -> ComparisonResult:
        """Compare the means of ``data`` with the references'; see the class docstring."""
        if not data.is_profile:
            reason = f"profile_pull needs a TProfile/TProfile2D, got {data.kind}"
            return skipped(self.name, data, reason)
        if not has_profile_errors(data):
            return skipped(self.name, data, "profile without per-bin entries or errors")
        with_errors = [r for r in refs if has_profile_errors(r)]
        dropped = [
            f"run {r.run}: not a profile with per-bin entries and errors"
            for r in refs
            if not has_profile_errors(r)
        ]
        usable, more = usable_refs(data, with_errors)
        if not usable:
            return skipped(self.name, data, no_reference_reason(dropped + more))
        assert data.bin_entries is not None  # for mypy: checked by _has_errors
        assert data.variances is not None
        w_d = np.asarray(data.bin_entries, dtype=np.float64)
        n = float(w_d.sum())
        if 0 < n < self.min_entries:
            return too_few_entries(self.name, data, n, self.min_entries)

        w = np.clip(
            np.stack([np.asarray(r.bin_entries, dtype=np.float64) for r in usable]), 0.0, None
        )
        m = np.stack([np.asarray(r.values, dtype=np.float64) for r in usable])
        v = np.clip(
            np.stack([np.asarray(r.variances, dtype=np.float64) for r in usable]), 0.0, None
        )
        w_sum = w.sum(axis=0)
        has_ref = w_sum > 0
        frac = w / np.where(has_ref, w_sum, 1.0)  # weights normalised per bin
        # Offset by the first reference so that a single reference is reproduced exactly.
        m_ref = np.where(has_ref, m[0] + (frac * (m - m[0])).sum(axis=0), 0.0)
        e_mean2 = (frac**2 * v).sum(axis=0)
        # Unbiased weighted variance with reliability weights; no spread with one reference.
        spread_den = 1.0 - (frac**2).sum(axis=0)
        spread_ok = has_ref & (spread_den > 1e-12)
        spread2 = np.where(
            spread_ok,
            (frac * (m - m_ref) ** 2).sum(axis=0) / np.where(spread_ok, spread_den, 1.0),
            0.0,
        )
        e_ref2 = e_mean2 + spread2 + (self.tol * m_ref) ** 2
        den2 = np.clip(np.asarray(data.variances, dtype=np.float64), 0.0, None) + e_ref2
        min_bin = max(self.min_bin_entries, np.finfo(np.float64).tiny)
        used = (w_d >= min_bin) & (w_sum >= min_bin) & (den2 > 0)
        diff = np.asarray(data.values, dtype=np.float64) - m_ref
        pulls = np.where(used, diff / np.sqrt(np.where(used, den2, 1.0)), 0.0)
        # Errors can be denormal-small: keep pulls (and their squares) finite.
        pulls = np.clip(pulls, -_PULL_LIMIT, _PULL_LIMIT)
        arrays = {"pulls": pulls, "ref_mean": m_ref, "ref_error": np.sqrt(e_ref2)}

        runs = ", ".join(str(r.run) for r in usable)
        against = f"run {runs}" if len(usable) == 1 else f"the weighted mean of runs {runs}"
        n_ref = float(w_sum.sum())
        n_used = int(used.sum())
        if n <= 0:
            return result(
                self.name,
                data,
                Status.FLAGGED,
                score=1.0,
                threshold=1.0,
                reason=f"no entries in data, references have {n_ref:.0f} ({against})",
                scores={"chi2": 0.0, "max_pull": 0.0},
                arrays=arrays,
            )
        if n_used == 0:
            reason = (
                f"no bin has >= {self.min_bin_entries:g} entries in both data and "
                f"references ({against})"
            )
            return skipped(self.name, data, reason)
        chi2 = float(np.sum(pulls**2) / n_used)
        worst = np.unravel_index(int(np.argmax(np.abs(pulls))), pulls.shape)
        max_pull = float(pulls[worst])
        score = max(chi2 / self.chi2_cut, abs(max_pull) / self.pull_cut)
        pull_cmp = ">" if abs(max_pull) > self.pull_cut else "<="
        chi2_cmp = ">" if chi2 > self.chi2_cut else "<="
        reason = (
            f"max pull {max_pull:.3g} {pull_cmp} {self.pull_cut:g} at "
            f"{bin_location(data, tuple(int(i) for i in worst))} (mean "
            f"{float(data.values[worst]):.4g} vs reference {float(m_ref[worst]):.4g} "
            f"+- {float(np.sqrt(e_ref2[worst])):.2g}), chi2 {chi2:.3g} {chi2_cmp} "
            f"{self.chi2_cut:g} over {n_used} bins, against {against}"
        )
        return result(
            self.name,
            data,
            Status.FLAGGED if score > 1.0 else Status.OK,
            score=score,
            threshold=1.0,
            reason=reason,
            scores={"chi2": chi2, "max_pull": max_pull},
            arrays=arrays,
        )
