"""Plugins layer: the beta-binomial comparator, the production test of CMS AutoDQM.

Numbers match AutoDQM's ``plugins/beta_binomial.py`` (see /work/shared/STATS.md), computed
in log space with scipy's ``gammaln`` values (table + Stirling, ``plugins._common``) and
broadcast over a ``(nRef, nBins)`` array.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import special

from engine.types import ComparisonResult, FloatArray, HistData, Status
from plugins._common import no_reference_reason, result, skipped, usable_refs
from plugins._numerics import gammaln_int

#: Floor on probabilities (about 37 sigma): ``chi2.isf`` fails below ~1e-323.
P_FLOOR = 1e-300
#: Pulls beyond this are treated as this in the look-elsewhere correction.
PULL_CLIP = 37.0
#: AutoDQM caps a fitted ``pull_cut`` at this value.
FIT_PULL_CAP = 36.0
#: log P(d)/P(down) is clipped here before ``exp``: e^700 over any pmf ratio is still > 1.
_LOG_P_CAP = 700.0


def prob_rel(data: FloatArray, refs: FloatArray, tol: float = 0.01) -> FloatArray:
    """Per-bin probability of the data relative to its most likely value, per reference.

    ``Prob(k) = betabinom.pmf(k, n, R_t + 1, N_t - R_t + 1)`` with the tolerance-scaled
    reference ``R_t = round(s R)``, ``N_t = round(s N)``, ``s = (1 + (R tol^2)^2)^(-1/2)``,
    evaluated in log space with ``gammaln``; the maximum is taken at ``floor``/``ceil`` of
    ``n R / N``. The ratio is capped at 1.

    Args:
        data: Rounded data counts, shape ``(nBins,)`` (all ``>= 0``).
        refs: Rounded reference counts, shape ``(nBins,)`` or ``(nRef, nBins)``, each with a
            positive total.
        tol: Relative-precision floor of a reference (0 disables the scaling).

    Returns:
        ``ProbRel`` in ``[0, 1]`` with the shape of ``refs``.
    """
    d = np.asarray(data, dtype=np.float64)
    r = np.asarray(refs, dtype=np.float64)
    n = float(d.sum())
    big_n = r.sum(axis=-1, keepdims=True)
    inv_s = r * tol**2  # 1/s, then scratch
    np.square(inv_s, out=inv_s)
    inv_s += 1.0
    np.sqrt(inv_s, out=inv_s)
    a = np.divide(r, inv_s)
    np.round(a, out=a)  # R_t
    b = np.divide(big_n, inv_s)
    np.round(b, out=b)
    b -= a
    b += 1.0
    a += 1.0
    mu = np.multiply(r, n)  # n R / N in AutoDQM's order: floor/ceil of a whole number
    mu /= big_n  # must not move
    down = np.floor(mu)  # >= 0; ceil(mu) is down + 1 unless mu is a whole number
    n_down = np.subtract(n, down)
    # every gammaln argument is a whole number >= 1; two batched calls: small arguments
    # (k + ...) and large ones (n - k + ...), so each is mostly table or mostly Stirling
    size, nb = r.size, d.size
    small, large = np.empty(3 * size + nb), np.empty(3 * size + nb)
    s3, l3 = small[: 3 * size].reshape((3, *r.shape)), large[: 3 * size].reshape((3, *r.shape))
    np.add(d, a, out=s3[0])
    np.add(down, a, out=s3[1])
    np.add(down, 1.0, out=s3[2])
    np.add(d, 1.0, out=small[3 * size :])
    np.subtract(n + 1.0, d, out=large[3 * size :])  # n - d + 1
    np.add(large[3 * size :], b, out=l3[0])
    l3[0] -= 1.0  # n - d + b
    np.add(n_down, b, out=l3[1])
    np.add(n_down, 1.0, out=l3[2])
    # P(down + 1) / P(down) by the pmf recurrence (exact, saves 4 gammaln), where the
    # maximum may sit at ceil(mu) = down + 1; 0/0 (n_down = 0, b = 1) is dropped by fmax
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.multiply(n_down, s3[1])
        den = np.subtract(l3[1], 1.0, out=n_down)
        den *= s3[2]
        step /= den
    step *= mu > down
    np.fmax(step, 1.0, out=step)
    gs, gl = gammaln_int(small), gammaln_int(large)
    gs3, gl3 = gs[: 3 * size].reshape(s3.shape), gl[: 3 * size].reshape(l3.shape)
    # log P(d) - log P(down) without the k-independent terms, summed in the order of the
    # original gammaln code (with scipy's gammaln values this gives the same numbers)
    log_max = np.add(gs3[1], gl3[1], out=gs3[1])
    log_max -= gs3[2]
    log_max -= gl3[2]
    p: FloatArray = np.add(gs3[0], gl3[0], out=gs3[0])
    p -= np.add(gs[3 * size :], gl[3 * size :])
    p -= log_max
    np.minimum(p, _LOG_P_CAP, out=p)  # e^700 over any pmf ratio is still > 1: capped below
    np.exp(p, out=p)
    p /= step  # P(d) / max(P(down), P(down + 1))
    np.minimum(p, 1.0, out=p)
    return p


def sigmas(p: FloatArray, exact_z: bool = False) -> FloatArray:
    """Probabilities (floored at ``P_FLOOR``) as standard deviations ``z >= 0``.

    AutoDQM's ``sqrt(chi2.isf(p, 1))`` by default, which reads the likelihood ratio of a
    3 sigma deviation as 2.54; with ``exact_z`` ``sqrt(-2 ln p)``, exact for a Gaussian.
    """
    q = np.minimum(np.asarray(p, dtype=np.float64), 1.0)
    np.maximum(q, P_FLOOR, out=q)
    if exact_z:
        np.log(q, out=q)
        q *= -2.0
        return np.sqrt(q, out=q)
    # sqrt(chi2.isf(q, 1)) == -ndtri(q / 2), to 1e-14 and ~200x faster than chdtri
    q *= 0.5
    special.ndtri(q, out=q)
    return np.abs(q, out=q)


def pulls_multi(
    data: FloatArray, refs: FloatArray, tol: float = 0.01, exact_z: bool = False
) -> tuple[FloatArray, FloatArray]:
    """Signed per-bin pulls and the probability-weighted reference, normalised to the data.

    Args:
        data: Rounded data counts, shape ``(nBins,)``.
        refs: Rounded reference counts, shape ``(nRef, nBins)`` (or ``(nBins,)``).
        tol: See :func:`prob_rel`. exact_z: See :func:`sigmas`.

    Returns:
        ``(pulls, Rw)`` of shape ``(nBins,)``: ``pull = z(mean_i p_i) sign(D - Rw)``,
        ``Rw = n sum_i (R_i/N_i) p_i / sum_j p_j``, ``p_i = max(ProbRel_i, 1e-300)``.
    """
    d = np.asarray(data, dtype=np.float64)
    r = np.atleast_2d(np.asarray(refs, dtype=np.float64))
    p = prob_rel(d, r, tol)
    np.maximum(p, P_FLOOR, out=p)
    p_sum = p.sum(axis=0)
    p *= r
    p *= 1.0 / r.sum(axis=1, keepdims=True)  # now (R_i / N_i) p_i
    rw = p.sum(axis=0)
    rw /= p_sum  # a weighted mean of R_i / N_i: no overflow however small the p_i
    rw *= d.sum()
    p_sum /= r.shape[0]
    z = sigmas(p_sum, exact_z)
    z *= np.sign(np.subtract(d, rw, out=p_sum))
    return z, rw


def lookelsewhere_norm(x: float, n_bins: float) -> float:
    """AutoDQM's look-elsewhere correction of a signed pull ``x`` found among ``n_bins`` bins.

    Returns the signed pull whose one-bin tail probability is the chance of a pull as large
    as ``x`` (capped at 37) anywhere among ``n_bins`` bins.
    """
    q = float(special.chdtrc(1.0, min(abs(x), PULL_CLIP) ** 2))
    if n_bins * q < 0.01:
        qn = n_bins * q
    else:  # 1 - (1 - q)^N, accurately
        qn = 1.0 if q >= 1.0 else -math.expm1(n_bins * math.log1p(-q))
    return float(np.sign(x)) * math.sqrt(float(special.chdtri(1.0, max(qn, P_FLOOR))))


def max_pull_norm(pulls: FloatArray, n_bins: float) -> tuple[float, int]:
    """Look-elsewhere corrected extreme pull (signed) and the flat index of its bin."""
    i_hi, i_lo = int(np.argmax(pulls)), int(np.argmin(pulls))
    hi = lookelsewhere_norm(float(pulls[i_hi]), n_bins)
    lo = lookelsewhere_norm(float(pulls[i_lo]), n_bins)
    return (lo, i_lo) if abs(lo) > hi else (hi, i_hi)  # AutoDQM's comparison, kept as is


def fitted_cut(param: tuple[float, float], n_ref: int) -> float:
    """``a / nRef + b**2``: a ``thresholds_fit`` curve evaluated at ``n_ref`` references."""
    a, b = param
    return a / max(n_ref, 1) + b * b


def window_slice(edges: FloatArray, xmin: float | None, xmax: float | None) -> tuple[slice, int]:
    """AutoDQM's xmin/xmax window on a 1D axis: the bins kept and its edge count.

    Bins whose lower edge lies in ``[xmin, xmax]`` are kept. The edge count reproduces
    AutoDQM's (one less than the true count when ``xmax`` cuts the axis), which decides
    whether trimming applies afterwards.
    """
    n_edges = len(edges)
    lo, hi = 0, n_edges - 1
    if n_edges > 4:
        if xmin is not None and xmin < edges[-2]:
            lo = int(np.flatnonzero(edges >= xmin)[0])
        if xmax is not None and xmax > edges[1]:
            hi = int(np.flatnonzero(edges <= xmax)[-1])
    return slice(lo, min(hi + 1, n_edges - 1)), hi - lo + 1


def trim_slice(total: FloatArray, n_edges: int) -> slice:
    """AutoDQM's trimming of empty leading/trailing bins (one empty bin kept, >= 20 bins)."""
    filled = np.flatnonzero(total > 0)
    if n_edges <= 20 or filled.size == 0:
        return slice(0, total.size)
    hi = max(min(int(filled[-1]) + 1, n_edges - 1), 20)
    lo = min(max(int(filled[0]) - 1, 0), hi - 20)
    return slice(lo, hi + 1)


def _clean(values: FloatArray) -> tuple[FloatArray, int]:
    """Counts as AutoDQM uses them: rounded float64, with non-finite and negative bins as 0."""
    r: FloatArray = np.asarray(values, dtype=np.float64).round()
    if r.size == 0 or (r.min() >= 0.0 and r.max() < math.inf):  # the usual case, cheaply
        return r, 0
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(r) | (r < 0)
    return np.where(bad, 0.0, r), int(np.count_nonzero(bad))


def _bin_text(data: HistData, flat: int) -> str:
    """'x=3 at 5-6' (1D) or 'x=3, y=7 at 5-6, 1-2' (2D), with bin labels when present."""
    index = np.unravel_index(flat, data.values.shape)
    names, ranges = [], []
    for axis, (name, i) in enumerate(zip("xy", (int(j) for j in index), strict=False)):
        labels = data.labels[axis] if axis < len(data.labels) else None
        label = f" ({labels[i]})" if labels and i < len(labels) else ""
        names.append(f"{name}={i}{label}")
        if axis < len(data.edges) and i + 1 < len(data.edges[axis]):
            ranges.append(f"{data.edges[axis][i]:g}\u2013{data.edges[axis][i + 1]:g}")
    return ", ".join(names) + (" at " + ", ".join(ranges) if ranges else "")


@dataclass(frozen=True, slots=True)
class BetaBinomial:
    """Beta-binomial pulls of data against one or more references (CMS AutoDQM method).

    Each bin's probability of the observed count given a reference is the beta-binomial
    pmf relative to its maximum; the mean over references becomes a pull in sigma
    (``sqrt(chi2.isf(p, 1))``, or ``sqrt(-2 ln p)`` with ``exact_z``). Scores:
    ``chi2 = sum(pull^2) / nBinsUsed`` and ``max_pull``, the largest pull after a
    look-elsewhere correction for ``nBinsUsed`` bins (signed, in sigma). ``score`` is the
    severity in units of the cuts, ``max(chi2 / chi2_cut, |max_pull| / pull_cut)``, judged
    against ``threshold = 1``. Empty data with non-empty references is flagged.
    """

    name: ClassVar[str] = "beta_binomial"
    plot_kind: ClassVar[str] = "overlay"
    dims: ClassVar[tuple[int, ...]] = (1, 2)

    pull_cap: float = 10.0  # display only: the plots' pull scale; never changes a verdict
    chi2_cut: float = 10.0
    pull_cut: float = 10.0
    min_entries: int = 1
    tol: float = 0.01
    exact_z: bool = False
    xmin: float | None = None
    xmax: float | None = None
    concatenated: bool = False
    fit_chi2: tuple[float, float] | None = None
    fit_pull: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        for field in ("pull_cap", "chi2_cut", "pull_cut"):
            value = getattr(self, field)
            if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
                msg = f"beta_binomial: {field} must be a positive number, found {value!r}"
                raise ValueError(msg)
        if not (self.tol >= 0 and math.isfinite(self.tol)) or self.min_entries < 0:
            msg = (
                f"beta_binomial: expected tol >= 0 and min_entries >= 0, found "
                f"tol={self.tol!r}, min_entries={self.min_entries!r}"
            )
            raise ValueError(msg)

    def cuts(self, n_ref: int) -> tuple[float, float]:
        """``(chi2_cut, pull_cut)`` for ``n_ref`` usable references (``thresholds_fit`` applied).

        AutoDQM's plugin counts as ``nRef`` the references it keeps (same size, non-empty
        after rounding), not the ones asked for; so do we.
        """
        chi2_cut = 0.8 * fitted_cut(self.fit_chi2, n_ref) if self.fit_chi2 else self.chi2_cut
        pull_cut = min(fitted_cut(self.fit_pull, n_ref), FIT_PULL_CAP) if self.fit_pull else None
        return chi2_cut, self.pull_cut if pull_cut is None else pull_cut

    def compare(self, data: HistData, refs: Sequence[HistData]) -> ComparisonResult:
        """Judge ``data`` against ``refs``; see the class docstring for the scores."""
        kept, dropped = usable_refs(data, refs)
        d_all, n_bad = _clean(data.counts)
        runs = [ref.run for ref in kept]
        r_all = _clean(np.stack([ref.counts.ravel() for ref in kept]))[0] if kept else None
        if r_all is not None and not np.all(filled := r_all.sum(axis=1) > 0):
            dropped += [f"run {run}: no entries after rounding"
                        for run, ok in zip(runs, filled, strict=True) if not ok]  # fmt: skip
            runs, r_all = [run for run, ok in zip(runs, filled, strict=True) if ok], r_all[filled]
        if r_all is None or not runs:
            return _entries_finite(skipped(self.name, data, no_reference_reason(dropped)), d_all)
        d_flat = d_all.ravel()
        notes = [f"ignored {msg}" for msg in dropped]
        if n_bad:
            notes.append(f"{n_bad} non-finite or negative bin contents taken as 0")

        idx = np.arange(d_flat.size)  # the compared bins, as flat indices into data.values
        if data.ndim == 1:
            n_edges = d_flat.size + 1
            if (self.xmin is not None or self.xmax is not None) and d_flat.sum() > 0:
                win, w_edges = window_slice(np.asarray(data.edges[0]), self.xmin, self.xmax)
                in_win = r_all[:, win].sum(axis=1) > 0
                if d_flat[win].sum() > 0 and in_win.any():
                    idx, n_edges, r_all = idx[win], w_edges, r_all[in_win]
                    notes += [f"ignored run {run}: no entries in the x window"
                              for run, ok in zip(runs, in_win, strict=True) if not ok]  # fmt: skip
                else:
                    notes.append("x window ignored: it leaves the data or every reference empty")
            if not self.concatenated:
                idx = idx[trim_slice(d_flat[idx] + r_all[:, idx].sum(axis=0), n_edges)]
        d, r = (d_flat, r_all) if idx.size == d_flat.size else (d_flat[idx], r_all[:, idx])

        n, n_ref = float(d.sum()), r.shape[0]
        chi2_cut, pull_cut = self.cuts(n_ref)
        # bins empty in data and every reference have pull 0 and Rw 0 exactly: skip them
        used = (d + r.sum(axis=0)) > 0
        n_used = int(np.count_nonzero(used))
        if n_used == d.size:
            pulls, r_weighted = pulls_multi(d, r, self.tol, self.exact_z)
        else:
            pulls, r_weighted = np.zeros(d.size), np.zeros(d.size)
            r_used = r.compress(used, axis=1)  # stays C-ordered, unlike r[:, used]
            pulls[used], r_weighted[used] = pulls_multi(d[used], r_used, self.tol, self.exact_z)
        chi2 = float(np.dot(pulls, pulls)) / max(n_used, 1)
        max_pull, worst = max_pull_norm(pulls, n_used) if pulls.size else (0.0, 0)
        score = max(chi2 / chi2_cut, abs(max_pull) / pull_cut)

        pull_map, rw_map = pulls, r_weighted  # uncapped; plots cap the colours at pull_cap
        if idx.size != d_flat.size:
            pull_map, rw_map = np.zeros(d_flat.size), np.zeros(d_flat.size)
            pull_map[idx], rw_map[idx] = pulls, r_weighted
        shape = data.values.shape
        arrays = {"pulls": pull_map.reshape(shape), "ref_weighted": rw_map.reshape(shape)}

        chi2_bad, pull_bad = chi2 > chi2_cut, abs(max_pull) > pull_cut
        chi2_txt = f"chi2 = {chi2:.2f} {'>' if chi2_bad else '≤'} {chi2_cut:g}"
        pull_txt = f"max pull = {max_pull:.2f}\u03c3 {'>' if pull_bad else '≤'} {pull_cut:g}"
        if n <= 0:
            status, score = Status.FLAGGED, max(score, 1.0)
            total = f"{float(r.sum()) / n_ref:.0f}"
            refs_txt = f"reference has {total}" if n_ref == 1 else f"references have {total} "
            reason = f"no entries in data, {refs_txt}" + (f"(mean of {n_ref})" if n_ref > 1 else "")
        elif n < self.min_entries:
            status, score = Status.SKIPPED, 0.0
            reason = f"{n:.0f} entries < min_entries={self.min_entries}"
        elif chi2_bad or pull_bad:
            status = Status.FLAGGED
            worst_txt = _bin_text(data, int(idx[worst]))
            reason = f"{chi2_txt}{' and ' if chi2_bad and pull_bad else ', '}{pull_txt} "
            reason += f"(worst bin {worst_txt})"
        else:
            status, reason = Status.OK, f"{chi2_txt}, {pull_txt}"
        res = result(
            self.name, data, status, score=score, threshold=1.0,
            reason="; ".join([reason, *notes]), scores={"chi2": chi2, "max_pull": max_pull},
            arrays=arrays,
        )  # fmt: skip
        return _entries_finite(res, d_all)


def _entries_finite(res: ComparisonResult, counts: FloatArray) -> ComparisonResult:
    """With NaN or inf bins ``data.total`` is not finite: report the cleaned total instead."""
    if math.isfinite(res.entries):
        return res
    return dataclasses.replace(res, entries=float(counts.sum()))
