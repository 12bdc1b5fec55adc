"""Plugins layer: a low-rank model of a histogram's normal run-to-run variation, learned from
its history of good runs, and a run's pulls against it (the scores and their calibration
are in ``plugins._scores``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special

from engine.types import FloatArray

BoolArray = NDArray[np.bool_]
#: Huber constant of the robust coefficient fit (sigma): a failed region does not pull
#: the common modes towards itself.
HUBER = 3.0
#: Pseudo degrees of freedom of the pooled residual spread each bin is shrunk towards.
PRIOR_DOF = 4.0


@dataclass(frozen=True, slots=True)
class Series:
    """A histogram in model space: ``y`` (runs x bins) with noise variances ``v``.

    Counts are the log of each run's bin shares (half a count added), with Poisson
    variance ``1/(c + 1/2)``; profile means are used as they are, with their errors.
    ``v`` is ``inf`` where a run has no measurement of a bin.
    """

    y: FloatArray
    v: FloatArray


def counts_series(counts: FloatArray) -> Series:
    """``counts``: (runs, bins) of non-negative counts."""
    c = np.clip(np.nan_to_num(counts, nan=0.0), 0.0, None)
    n = c.sum(axis=1, keepdims=True)
    y = np.log((c + 0.5) / (n + 0.5 * c.shape[1]))
    return Series(y, 1.0 / (c + 0.5))


def means_series(means: FloatArray, variances: FloatArray, entries: FloatArray) -> Series:
    """Profile means with their squared errors; bins without entries are unmeasured.

    A bin's error is at least what its entries give with the per-entry spread of that bin
    in the other runs (median of error² x entries): a bin filled once has a zero error
    of its own, not a perfect measurement.
    """
    ok = (entries > 0) & np.isfinite(means) & np.isfinite(variances)
    var = np.nan_to_num(variances, nan=0.0)
    good = ok & (var > 0)
    per_entry = np.zeros(means.shape[1])
    seen = good.any(axis=0)  # a bin no run measured with an error gets no floor
    with np.errstate(all="ignore"):
        per_entry[seen] = np.nanmedian(np.where(good, var * entries, np.nan)[:, seen], axis=0)
        floor = per_entry[None, :] / np.where(ok, entries, 1.0)
    v = np.where(ok, np.maximum(np.maximum(var, floor), 1e-12), np.inf)
    return Series(np.where(ok, means, 0.0), v)


@dataclass(frozen=True, slots=True)
class Model:
    """The normal variation of one histogram: centre, common modes, each bin's own spread."""

    centre: FloatArray  # (bins,) median over the training runs
    scale: FloatArray  # (bins,) root-mean-square deviation: the modes' whitening
    modes: FloatArray  # (bins, rank) orthonormal in whitened space
    extra: FloatArray  # (bins,) residual run-to-run variance beyond the noise
    noise: FloatArray  # (bins,) mean noise variance of the training runs
    runs: int


def _weights(v: FloatArray) -> FloatArray:
    return np.where(np.isfinite(v), 1.0, 0.0)


def _basis(s: Series, rank_max: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Centre, scale and the leading right singular vectors of the whitened deviations."""
    w = _weights(s.v)
    with np.errstate(all="ignore"):
        if w.all():
            centre = np.median(s.y, axis=0)
        else:
            centre = np.nan_to_num(np.nanmedian(np.where(w > 0, s.y, np.nan), axis=0), nan=0.0)
        x = np.where(w > 0, s.y - centre, 0.0)
        scale = np.sqrt(np.sum(x * x, axis=0) / np.maximum(w.sum(axis=0), 1.0))
    scale = np.where(scale > 0, scale, 1.0)
    r = max(0, min(rank_max, x.shape[0] - 2))
    if r == 0:
        return centre, scale, np.zeros((x.shape[1], 0))
    # runs << bins: the right singular vectors from the runs' Gram matrix (k x k)
    xw = x / scale
    lam, u = np.linalg.eigh(xw @ xw.T)
    top = np.argsort(lam)[::-1][:r]
    sv = np.sqrt(np.maximum(lam[top], 1e-300))
    modes = (xw.T @ u[:, top]) / sv
    return centre, scale, modes


def _fit_coefficients(
    x: FloatArray, var: FloatArray, basis: FloatArray, weight: FloatArray
) -> FloatArray:
    """Robust (Huber) weighted least squares of ``x`` on ``basis``; (runs, rank)."""
    k, r = x.shape[0], basis.shape[1]
    if r == 0:
        return np.zeros((k, 0))
    w = weight / var
    coef = np.zeros((k, r))
    for _ in range(3):  # IRLS: least squares, then Huber weights twice
        a = np.einsum("kb,br,bq->krq", w, basis, basis) + 1e-9 * np.eye(r)
        b = np.einsum("kb,kb,br->kr", w, x, basis)
        coef = np.linalg.solve(a, b[..., None])[..., 0]
        z = np.abs(x - coef @ basis.T) / np.sqrt(var)
        w = weight / var * np.minimum(1.0, HUBER / np.maximum(z, 1e-12))
    return coef


def fit(s: Series, rank: int) -> Model:
    """The model of ``rank`` common modes from the runs of ``s`` (at least 2)."""
    k = s.y.shape[0]
    centre, scale, modes = _basis(s, rank)
    w = _weights(s.v)
    noise = np.sum(np.where(w > 0, s.v, 0.0), axis=0) / np.maximum(w.sum(axis=0), 1.0)
    x = np.where(w > 0, s.y - centre, 0.0)
    basis = modes * scale[:, None]
    var0 = np.where(w > 0, s.v, 1.0) + (scale * scale)[None, :]
    coef = _fit_coefficients(x, var0, basis, w)
    resid = np.where(w > 0, x - coef @ basis.T, 0.0)
    dof = np.maximum(w.sum(axis=0) - modes.shape[1] - 1.0, 1.0)
    raw = np.maximum(np.sum(resid * resid, axis=0) / dof - noise, 0.0)
    used = w.sum(axis=0) > 0
    pooled = float(np.median(raw[used])) if used.any() else 0.0
    extra = (dof * raw + PRIOR_DOF * pooled) / (dof + PRIOR_DOF)
    return Model(centre, scale, modes, extra, noise, k)


def residuals(
    model: Model, y: FloatArray, v: FloatArray, total: float | None = None
) -> tuple[FloatArray, FloatArray]:
    """Pulls ``z`` (bins) of a run against the model, and its fitted deviation (bins).

    For counts give the run's ``total`` entries: the Poisson variance is then taken at
    the model's expected count rather than the observed one, so a bin that dropped to
    zero weighs as what it should have held, not as an empty bin.
    """
    w = _weights(v[None, :])
    basis = model.modes * model.scale[:, None]
    x = np.where(w[0] > 0, y - model.centre, 0.0)[None, :]
    noise = np.where(w[0] > 0, v, 1.0)
    fitted = np.zeros_like(y)
    for _ in range(1 if total is None else 2):
        var = model.extra + noise + model.noise / model.runs
        coef = _fit_coefficients(x, var[None, :], basis, w)
        fitted = (coef @ basis.T)[0]
        if total is not None:
            share = np.exp(np.clip(model.centre + fitted, -700.0, 50.0))
            noise = 1.0 / (total * share / share.sum() + 0.5)
    if total is None:
        var = model.extra + noise + model.noise / model.runs
        z = np.where(w[0] > 0, (x[0] - fitted) / np.sqrt(var), 0.0)
        return z, fitted
    # counts: the pull on the count scale, Poisson at the expected count plus the learned
    # relative spread, so that few entries per bin are judged with their own errors
    share = np.exp(np.clip(model.centre + fitted, -700.0, 50.0))
    mu = total * share / share.sum()
    observed = np.exp(y) * (total + 0.5 * y.size) - 0.5
    rel = model.extra + model.noise / model.runs
    z = (observed - mu) / np.sqrt(mu + mu * mu * rel + 1e-12)
    small = mu < SMALL_COUNT
    if small.any():
        z[small] = _count_sigma(np.round(observed[small]), mu[small], rel[small])
    return z, fitted


#: Expected counts below this are judged by their negative-binomial tail, not the normal
#: approximation (a bin expecting 0.01 entries that holds 1 is a 2.3 sigma event, not 10).
SMALL_COUNT = 50.0


def _count_sigma(c: FloatArray, mu: FloatArray, rel: FloatArray) -> FloatArray:
    """Signed Gaussian sigma of counts ``c`` given expectations ``mu`` and a relative
    variance ``rel`` beyond Poisson (negative binomial; mid-p tail probabilities).

    Only the tail on the count's side is computed, through the regularised incomplete
    beta function: ``P(X <= c) = I_p(r, c + 1)`` and ``P(X > c) = I_{1-p}(c + 1, r)``.
    """
    r = 1.0 / np.maximum(rel, 1e-9)
    mu = np.maximum(mu, 1e-300)
    p, q = r / (r + mu), mu / (r + mu)  # q = 1 - p without cancellation
    log_pmf = (special.gammaln(c + r) - special.gammaln(r) - special.gammaln(c + 1.0)
               - r * np.log1p(mu / r) + c * (np.log(mu) - np.log(r + mu)))  # fmt: skip
    half = 0.5 * np.exp(log_pmf)
    up = c >= mu
    tail = np.where(up, special.betainc(c + 1.0, r, q), special.betainc(r, c + 1.0, p))
    tail = np.where(up, tail + half, tail - half)  # mid-p: P(X > c) + P(X = c) / 2 ...
    sigma = -special.ndtri(np.clip(tail, 1e-300, 0.5))  # ... or P(X < c) + P(X = c) / 2
    out: FloatArray = np.where(up, sigma, -sigma)
    return out


#: Folds of the rank's cross-validation over runs (each run is held out once).
RANK_FOLDS = 6
#: Fewer runs than this learn no common mode (rank 0): too few to tell one from chance.
MIN_RUNS_FOR_MODES = 8


def _half_errors(
    modes: FloatArray, x: FloatArray, a: BoolArray, b: BoolArray, top: int
) -> FloatArray:
    """Squared errors on bins ``b`` of runs ``x`` whose coefficients on the leading
    ``r`` modes are fitted on bins ``a``, for every ``r`` from 0 to ``top`` (a rank
    beyond the modes the training runs give has the error of all of them)."""
    have = modes.shape[1]
    out = np.zeros(top + 1)
    out[0] = float(np.sum(x[:, b] ** 2))
    ba, bb = modes[a], modes[b]
    gram, rhs = ba.T @ ba, ba.T @ x[:, a].T  # (have, have), (have, runs)
    for r in range(1, top + 1):
        if r > have:
            out[r] = out[r - 1]
            continue
        coef = np.linalg.lstsq(gram[:r, :r], rhs[:r], rcond=None)[0]
        out[r] = float(np.sum((x[:, b].T - bb[:, :r] @ coef) ** 2))
    return out


def choose_rank(s: Series, rank_max: int) -> int:
    """The number of common modes, by cross-validation over runs and bins.

    The runs are split into ``RANK_FOLDS`` folds; with each fold held out, the modes are
    learned from the others, and each held-out run's coefficients are fitted on the even
    bins and predict the odd ones, and the other way round. The rank with the smallest
    prediction error wins, a larger rank only when it lowers the error by more than 2 %.
    With fewer than ``MIN_RUNS_FOR_MODES`` runs the rank is 0.
    """
    k, n_bins = s.y.shape
    top = max(0, min(rank_max, k - 3, n_bins // 4))
    if top == 0 or k < MIN_RUNS_FOR_MODES:
        return 0
    halves = np.arange(n_bins) % 2 == 0
    err = np.zeros(top + 1)
    fold = np.arange(k) % min(RANK_FOLDS, k)
    for f in np.unique(fold):
        held = fold == f
        centre, scale, modes = _basis(Series(s.y[~held], s.v[~held]), top)
        ok = np.isfinite(s.v[held])
        x = np.where(ok, s.y[held] - centre, 0.0) / scale  # (held runs, bins)
        for fit_on in (halves, ~halves):
            if ok.all():  # every held-out run measured every bin: one solve for all
                err += _half_errors(modes, x, fit_on, ~fit_on, top)
            else:
                for i in range(x.shape[0]):
                    err += _half_errors(modes, x[i : i + 1], fit_on & ok[i], ~fit_on & ok[i], top)
    best = 0
    for r in range(1, top + 1):
        if err[r] < 0.98 * err[best]:
            best = r
    return best
