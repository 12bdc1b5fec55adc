"""Plugins layer: the scores of a run against a model of its normal variation, and their
tail probabilities: windows of pulls, leave-one-out calibration, the rate of a histogram.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special, stats

from engine.types import FloatArray, HistData

BoolArray = NDArray[np.bool_]
#: Smallest spread of the log of a calibration score (a history whose scores all agree
#: still leaves room for chance).
MIN_LOG_SPREAD = 0.05


#: Pseudo degrees of freedom of the subsystem's rate spread (``HistData.rate_spread``)
#: that a histogram's own spread over its history is shrunk towards.
RATE_PRIOR_DOF = 4.0


def rate_change(data: HistData, hist: Sequence[HistData]) -> tuple[float, float, float] | None:
    """The data's share of its run's exposure against the history's: ``(log p, relative
    change, relative spread)``, or None without exposures or with fewer than 2 runs.

    The log share of each of the ``k`` history runs scatters by ``sd`` (``k - 1`` degrees
    of freedom), shrunk towards the subsystem's typical spread ``data.rate_spread`` when
    known (``RATE_PRIOR_DOF`` more). The data's log share is judged with the predictive
    Student t (spread ``sd sqrt(1 + 1/k)``, plus the data's own Poisson variance),
    two-sided.
    """
    runs = [*hist, data]
    n = np.array([float(np.nansum(r.counts)) for r in runs])
    e = np.array([r.exposure for r in runs])
    if len(hist) < 2 or not (np.all(np.isfinite(e)) and np.all(e > 0) and np.all(n > 0)):
        return None
    share = np.log(n / e)
    past, now = share[:-1], float(share[-1])
    k = len(past)
    var, dof = float(np.var(past, ddof=1)), k - 1.0
    prior = data.rate_spread
    if math.isfinite(prior) and prior >= 0:
        var = (dof * var + RATE_PRIOR_DOF * prior * prior) / (dof + RATE_PRIOR_DOF)
        dof += RATE_PRIOR_DOF
    scale = math.sqrt(var * (1.0 + 1.0 / k) + 1.0 / n[-1] + 1e-8)
    t = abs(now - float(np.mean(past))) / scale
    log_p = math.log(2.0) + float(stats.t.logsf(t, df=dof))
    return log_p, math.expm1(now - float(np.mean(past))), math.expm1(math.sqrt(var))


@dataclass(frozen=True, slots=True)
class Calibrated:
    """A score's tail probability from the leave-one-out scores of the history runs."""

    log_p: float  # natural log of the one-sided tail probability
    sigma: float  # the same as a one-sided Gaussian sigma
    centre: float  # typical score of a history run (exp of the mean log score)


def calibrate(loo: FloatArray, score: float) -> Calibrated:
    """Predictive Student t on the log of the ``loo`` scores (>= 3), evaluated at ``score``.

    The history runs' leave-one-out scores are a sample of what a healthy run scores; the
    log of a score is taken as normal with their mean and spread, and a new run's log
    score as Student t with ``k - 1`` degrees of freedom and spread ``sd sqrt(1 + 1/k)``
    (the predictive distribution of one more draw). With few history runs the t is wide
    and the cut is reached later, never sooner.
    """
    logs = np.log(np.maximum(loo, 1e-300))
    k = len(logs)
    mu = float(np.mean(logs))
    sd = max(float(np.std(logs, ddof=1)), MIN_LOG_SPREAD)
    t = (math.log(max(score, 1e-300)) - mu) / (sd * math.sqrt(1.0 + 1.0 / k))
    log_p = float(stats.t.logsf(t, df=k - 1))
    return Calibrated(log_p, sigma_of_log_p(log_p), math.exp(mu))


def sigma_of_log_p(log_p: float) -> float:
    """One-sided Gaussian sigma of a tail probability given by its log (no floor at 37 sigma)."""
    return float(-special.ndtri_exp(min(log_p, math.log(0.5))))


def window_scan(z: FloatArray, shape: tuple[int, ...]) -> tuple[float, tuple[int, ...], int]:
    """Largest ``|sum z| / sqrt(cells)`` over windows, and where.

    1D: runs of 1, 2, 4, ... bins up to half the axis. 2D: squares of 1, 2, 4, 8 bins,
    whole rows and whole columns. Returns the statistic, the window's lower corner and
    its size (bins per side; 0 for a whole row or column).
    """
    if len(shape) == 1:
        cs = np.concatenate([[0.0], np.cumsum(z)])
        best, where1, size = 0.0, 0, 1
        w = 1
        while w <= max(1, shape[0] // 2):
            win = np.abs(cs[w:] - cs[:-w]) / math.sqrt(w)
            j = int(np.argmax(win))
            if win[j] > best:
                best, where1, size = float(win[j]), j, w
            w *= 2
        return best, (where1,), size
    g = z.reshape(shape)
    ii = np.zeros((shape[0] + 1, shape[1] + 1))
    ii[1:, 1:] = np.cumsum(np.cumsum(g, axis=0), axis=1)
    best, where, size = 0.0, (0, 0), 1
    for w in (1, 2, 4, 8):
        if w > min(shape):
            break
        blk = np.abs(ii[w:, w:] - ii[:-w, w:] - ii[w:, :-w] + ii[:-w, :-w]) / w
        at = np.unravel_index(int(np.argmax(blk)), blk.shape)
        if blk[at] > best:
            best, where, size = float(blk[at]), (int(at[0]), int(at[1])), w
    rows = np.abs(g.sum(axis=1)) / math.sqrt(shape[1])
    cols = np.abs(g.sum(axis=0)) / math.sqrt(shape[0])
    if rows.max() > best:
        best, where, size = float(rows.max()), (int(np.argmax(rows)), -1), 0
    if cols.max() > best:
        best, where, size = float(cols.max()), (-1, int(np.argmax(cols))), 0
    return best, where, size


def statistics(
    z: FloatArray, used: BoolArray, shape: tuple[int, ...]
) -> tuple[FloatArray, tuple[int, ...], int]:
    """The two scores a run is judged by (the worst window, the mean squared pull), and
    where that window is (:func:`window_scan`'s corner and size)."""
    n = max(int(used.sum()), 1)
    worst, corner, size = window_scan(z, shape)
    return np.array([worst, float(np.sum(z * z)) / n + 1e-12]), corner, size
