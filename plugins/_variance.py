"""Plugins layer: the normal run-to-run variation of each cell, learned from the spread
among the reference runs (random-effects meta-analysis with empirical-Bayes shrinkage),
and calibrated tail probabilities for the data's deviation from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special

from engine.types import FloatArray

IntArray = NDArray[np.intp]
#: Tail probabilities are floored here (about 37 sigma): ``ndtri`` is -inf at 0.
P_FLOOR = 1e-300
#: Counts whose expectation is below this also get the negative-binomial tail.
DISCRETE_BELOW = 500.0
#: Cells closer than this (Gaussian sigma) to normal keep the Gaussian value.
EXACT_ABOVE = 1.5


@dataclass(frozen=True, slots=True)
class Normal:
    """What the references say a healthy run looks like, per cell.

    ``expected`` and ``var`` are the expectation and total variance of the data content
    (or mean) of each cell; ``var_learned`` is the part of ``var`` that was estimated
    from the references and is itself uncertain, with ``dof`` degrees of freedom;
    ``sigma`` the learned run-to-run spread per cell (relative for counts, absolute for
    means) and ``prior`` the pooled spread of each layout it was shrunk towards.
    """

    expected: FloatArray
    var: FloatArray
    var_learned: FloatArray
    sigma: FloatArray
    prior: FloatArray
    dof: FloatArray | float


def weighted_median(x: FloatArray, w: FloatArray) -> float:
    """Median of ``x`` with non-negative weights ``w`` (0 when every weight is 0)."""
    keep = w > 0
    if not keep.any():
        return 0.0
    xs, ws = x[keep], w[keep]
    order = np.argsort(xs, kind="stable")
    cum = np.cumsum(ws[order])
    return float(xs[order][int(np.searchsorted(cum, 0.5 * cum[-1]))])


def shrink(
    raw: FloatArray, weight: FloatArray, layout: IntArray, n_layouts: int, n_ref: int,
    prior_dof: float, floor: float, fallback: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:  # fmt: skip
    """Per-cell variances shrunk towards their layout's pooled value (as limma does).

    ``v = (d0 v0 + d max(raw, 0)) / (d0 + d)`` with ``d = n_ref - 1`` degrees of freedom
    per cell and ``v0`` the ``weight``-weighted median of ``raw`` over the layout's cells
    (``fallback`` when nothing can be learned, i.e. one reference), but never below the
    cell's own ``raw`` (then with its own ``d`` degrees of freedom): the median cell says
    nothing about a noisy channel. ``floor`` bounds everything from below.

    Returns:
        ``(v per cell, v0 per layout, degrees of freedom of v per cell)``.
    """
    d = float(n_ref - 1)
    prior = np.full(n_layouts, fallback)
    if d > 0:
        for k in range(n_layouts):
            sel = layout == k
            prior[k] = weighted_median(raw[sel], weight[sel])
    np.maximum(prior, floor, out=prior)
    v = (prior_dof * prior[layout] + d * np.maximum(raw, 0.0)) / (prior_dof + d)
    own = raw > v  # never below the cell's own estimate: the prior cannot hide a noisy cell
    v = np.where(own, raw, v)
    dof = np.where(own, max(d, 1.0), prior_dof + d)
    return np.maximum(v, floor, out=v), prior, dof


def learn_counts(
    refs: FloatArray, totals: FloatArray, n: float, layout: IntArray, n_layouts: int, *,
    prior_dof: float, floor: float, fallback: float, known: FloatArray | float = 0.0,
) -> Normal:  # fmt: skip
    """The normal content of each cell of the data, from the references' cell contents.

    Each reference's fraction ``f_i = R_i / N_i`` of a cell scatters around the true
    fraction ``f`` with the Poisson variance ``f / N_i`` plus a run-to-run variance
    ``(s f)^2``; ``s^2`` is estimated per cell by DerSimonian and Laird's moment estimator
    (``(Q - (K - 1)) / (f S)``, ``Q = sum_i N_i (f_i - f)^2 / f``,
    ``S = sum N - sum N^2 / sum N``), shrunk towards its layout's pooled value
    (:func:`shrink`). The expected data content is ``n`` times the random-effects mean of
    the ``f_i``; its variance adds the data's own Poisson and run-to-run variance and the
    uncertainty of that mean. Nothing here depends on the data's content, only its total.

    Args:
        refs: Reference contents per cell, ``(K, C)``.
        totals: Each reference's total entries, ``(K,)``. n: The data's total entries.
        layout: Layout index of each cell. n_layouts: Number of layouts.
        prior_dof, floor, fallback: See :func:`shrink` (``floor``/``fallback`` are
            relative standard deviations here).
        known: A run-to-run variance of each cell's fraction that is assumed, not
            learned (e.g. from edges allowed to move), added to the learned one.
    """
    k = refs.shape[0]
    big_n = float(totals.sum())
    # half an entry where no reference has any (Jeffreys): data there is judged against
    # the Gamma-Poisson of an unseen rate, not against exactly zero
    empty = refs.sum(axis=0) == 0
    f = (refs.sum(axis=0) + 0.5 * empty) / big_n
    frac = refs / totals[:, None]
    q = ((frac - f) ** 2 * totals[:, None]).sum(axis=0) / f
    spread = big_n - float((totals**2).sum()) / big_n
    raw = (q - (k - 1)) / (f * spread) if k > 1 else np.zeros_like(f)
    rel2, prior, dof = shrink(raw, f, layout, n_layouts, k, prior_dof, floor**2, fallback**2)
    tau2 = rel2 * f * f
    excess = (rel2 - floor**2) * f * f  # the floor is assumed, only the excess is learned
    w = 1.0 / (f / totals[:, None] + tau2 + known)  # random-effects weights, (K, C)
    w_sum = w.sum(axis=0)
    f_hat = np.where(empty, f, (w * frac).sum(axis=0) / w_sum)
    expected = n * f_hat
    learned = n * n * excess
    var = expected + n * n * (tau2 + known) + n * n / w_sum
    return Normal(expected, var, learned, np.sqrt(rel2), np.sqrt(prior), dof)


def learn_means(
    means: FloatArray, errors2: FloatArray, ok: NDArray[np.bool_], layout: IntArray,
    n_layouts: int, *, prior_dof: float, floor: float, fallback: float,
) -> Normal:  # fmt: skip
    """The normal mean of each cell (profiles), from the references' cell means.

    As :func:`learn_counts` with each reference's mean ``m_i`` (error ``e_i``) in place of
    a fraction and an absolute run-to-run variance ``t^2``:
    ``t^2 = (Q - (K - 1)) / (sum w - sum w^2 / sum w)``, ``w_i = 1 / e_i^2``. References
    without entries in a cell (``ok`` false) do not count there.

    Args:
        means, errors2: ``(K, C)`` cell means and squared errors of the references.
        ok: ``(K, C)`` where a reference has entries in the cell.
        layout, n_layouts, prior_dof, floor, fallback: as :func:`learn_counts`
            (``floor``/``fallback`` absolute here).
    """
    e2 = np.where(ok, np.maximum(errors2, 1e-300), np.inf)
    w = np.where(ok, 1.0 / e2, 0.0)
    w_sum = w.sum(axis=0)
    has = w_sum > 0
    safe = np.where(has, w_sum, 1.0)
    m_fixed = (w * np.where(ok, means, 0.0)).sum(axis=0) / safe
    q = (w * (np.where(ok, means, 0.0) - m_fixed) ** 2).sum(axis=0)
    k_cell = ok.sum(axis=0)
    c = w_sum - (w * w).sum(axis=0) / safe
    raw = np.where((k_cell > 1) & (c > 0), (q - (k_cell - 1)) / np.where(c > 0, c, 1.0), 0.0)
    k = int(k_cell.max()) if k_cell.size else 0
    weight = np.where(k_cell > 1, 1.0, 0.0)
    tau2, prior, dof = shrink(raw, weight, layout, n_layouts, k, prior_dof, floor**2, fallback**2)
    w_re = np.where(ok, 1.0 / (e2 + tau2), 0.0)
    w_re_sum = w_re.sum(axis=0)
    expected = (w_re * np.where(ok, means, 0.0)).sum(axis=0) / np.where(has, w_re_sum, 1.0)
    mean_var = 1.0 / np.where(has, w_re_sum, np.inf)
    var = np.where(has, tau2 + mean_var, 0.0)
    learned = np.where(has, tau2 - floor**2, 0.0)
    return Normal(expected, var, learned, np.sqrt(tau2), np.sqrt(prior), dof)


def tail_sigmas(
    observed: FloatArray, normal: Normal, *, counts: bool, extra_var: FloatArray | float = 0.0
) -> FloatArray:
    """Signed significance (sigma) of each cell's deviation from its normal value.

    The one-sided tail probability is Student's t, with Satterthwaite's degrees of freedom
    for a variance whose learned part has ``normal.dof`` (the learned variation is itself
    uncertain); for counts with small expectations also the negative binomial of the same
    mean and variance (mid-p), the larger of the two kept. The probability is converted
    to the Gaussian sigma with the same one-sided tail. Both tails are heavier than the
    Gaussian, so cells within ``EXACT_ABOVE`` sigma keep their Gaussian value.

    Args:
        observed: Data content (counts) or mean per cell.
        normal: From :func:`learn_counts` or :func:`learn_means`.
        counts: Whether ``observed`` are counts (adds the discrete tail).
        extra_var: Variance of ``observed`` not in ``normal.var`` (a mean's own error).
    """
    var = normal.var + extra_var
    diff = observed - normal.expected
    ok = var > 0
    out: FloatArray = np.where(ok, diff / np.sqrt(np.where(ok, var, 1.0)), 0.0)
    # the tails below are never more significant than the Gaussian's, so a cell within
    # EXACT_ABOVE sigma stays there: only the others need them (a few percent of cells)
    far = np.flatnonzero(np.abs(out) > EXACT_ABOVE)
    if far.size:
        z, v, mu = out[far], var[far], normal.expected[far]
        share = normal.var_learned[far] / v
        dof = np.broadcast_to(normal.dof, out.shape)[far]
        with np.errstate(divide="ignore"):
            nu = np.clip(dof / np.maximum(share * share, 1e-12), dof, 1e9)
        p = special.stdtr(nu, -np.abs(z))
        if counts:
            small = mu < DISCRETE_BELOW
            if small.any():
                p[small] = np.maximum(p[small], _nb_tail(observed[far][small], mu[small],
                                                         v[small]))  # fmt: skip
        np.maximum(p, P_FLOOR, out=p)
        out[far] = -special.ndtri(np.minimum(p, 0.5)) * np.sign(z)
    bad = ~ok & (diff != 0)  # no variance at all, yet a difference: as far as we go
    out[bad] = np.sign(diff[bad]) * 37.0
    return out


def _nb_tail(k: FloatArray, mu: FloatArray, var: FloatArray) -> FloatArray:
    """Mid-p one-sided tail of ``k`` under the negative binomial of mean ``mu`` and
    variance ``var`` (Poisson when ``var <= mu``), in the direction of ``k - mu``."""
    mu = np.maximum(mu, 1e-12)
    r = np.minimum(mu * mu / np.maximum(var - mu, 1e-12 * mu), 1e12)
    p = r / (r + mu)
    up = k > mu
    kk = np.maximum(k, 0.0)
    # P(X >= k) = I_{1-p}(k, r); P(X <= k) = I_p(r, k + 1); P(X = k) between consecutive
    ge = np.where(kk > 0, special.betainc(np.maximum(kk, 1e-300), r, 1.0 - p), 1.0)
    gt = special.betainc(kk + 1.0, r, 1.0 - p)
    le = 1.0 - gt
    at = ge - gt
    out: FloatArray = np.where(up, ge - 0.5 * at, le - 0.5 * at)
    return out


def lookelsewhere(z: float, trials: int) -> float:
    """The signed sigma of a two-sided deviation ``z`` found as the largest of ``trials``.

    ``q = 2 Phi(-|z|)``, ``q_N = N q`` (``1 - (1 - q)^N`` when that is above 0.01), and
    back to sigma: Bonferroni over the cells, conservative for overlapping ones.
    """
    q = 2.0 * float(special.ndtr(-abs(z)))
    qn = trials * q
    if qn >= 0.01:
        qn = 1.0 if q >= 1.0 else -float(np.expm1(trials * np.log1p(-q)))
    return float(np.sign(z)) * float(-special.ndtri(max(qn, P_FLOOR) / 2.0))


def run_cut(alpha: float, n_tests: int, floor: float) -> float:
    """The sigma a test must exceed so that a healthy run of ``n_tests`` such tests has a
    false flag with probability at most ``alpha`` (Bonferroni), but never below ``floor``."""
    return max(floor, float(-special.ndtri(alpha / (2.0 * max(n_tests, 1)))))


@dataclass(frozen=True, slots=True)
class RunLevelCut:
    """The cut of the calibrated tests (their first four parameters; see :func:`run_cut`):
    ``z_cut`` fixes it (sigma); else ``alpha``, the false-flag probability per healthy
    subsystem-run, over ``n_tests`` histograms (set by the pipeline), never below
    ``min_cut`` sigma."""

    z_cut: float | None = None
    alpha: float = 0.01
    n_tests: int = 1
    min_cut: float = 5.0

    @property
    def cut(self) -> float:
        """The sigma the look-elsewhere corrected deviation must exceed to be flagged."""
        if self.z_cut is not None:
            return float(self.z_cut)
        return run_cut(self.alpha, self.n_tests, self.min_cut)

    def cut_checks(self) -> dict[str, bool]:
        """Whether each of the four fields has a usable value."""
        return {
            "z_cut": self.z_cut is None or 0 < self.z_cut < math.inf,
            "alpha": 0 < self.alpha < 1,
            "n_tests": isinstance(self.n_tests, int) and self.n_tests >= 1,
            "min_cut": 0 < self.min_cut < math.inf,
        }
