"""Plugins layer: fast numerics with measured bounds, shared by the comparators.

``gammaln`` of whole numbers and AutoDQM's asymmetric Poisson errors (tables built
lazily on first use, asymptotic series above).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import NDArray
from scipy import special

from engine.types import FloatArray

#: Whole numbers below this take ``gammaln`` from a table (1 MiB, built on first use).
LGAMMA_TABLE_SIZE = 2**17
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
#: Central coverage of AutoDQM's asymmetric Poisson interval (one Gaussian sigma).
CONFIDENCE = 0.6827
Q_LOW = (1.0 - CONFIDENCE) / 2.0
Q_HIGH = (1.0 + CONFIDENCE) / 2.0
#: Poisson errors: whole m below this from an exact table, any m from it on by series.
POISSON_TABLE_SIZE = 1024
#: Fractional m below this use scipy (the high error crosses 0 near m = 1.3) ...
POISSON_EXACT_BELOW = 2.0
#: ... and above it a cubic in sqrt(m) on a grid of this step (sqrt(2) - 32, padded).
_GRID_STEP = 0.01
_GRID_START = 1.4
_Z = float(special.ndtri(Q_HIGH))


@functools.cache
def _lgamma_table() -> FloatArray:
    """``gammaln(k)`` for ``k = 0 .. LGAMMA_TABLE_SIZE - 1`` (read-only; built once)."""
    table: FloatArray = special.gammaln(np.arange(LGAMMA_TABLE_SIZE, dtype=np.float64))
    table.flags.writeable = False
    return table


def stirling_gammaln(z: FloatArray) -> FloatArray:
    """``gammaln(z)`` by Stirling's series, for ``z >= LGAMMA_TABLE_SIZE``.

    ``(z - 1/2) ln z - z + ln(2 pi)/2 + 1/(12 z)``, the form scipy (cephes) sums: the next
    term, ``1/(360 z^3)``, is below 1.3e-18 there, far under the rounding of the result
    (ulp >= 2e-10), so this is as accurate as ``scipy.special.gammaln``.
    """
    out: FloatArray = np.log(z)
    tmp = z - 0.5
    out *= tmp
    out -= z
    out += _HALF_LOG_2PI
    np.divide(1.0 / 12.0, z, out=tmp)
    out += tmp
    return out


def gammaln_int(x: FloatArray) -> FloatArray:
    """``scipy.special.gammaln(x)`` for whole numbers ``x >= 1``, 2-10x faster.

    ``log((x - 1)!)`` from a table below :data:`LGAMMA_TABLE_SIZE` (scipy's values) and
    :func:`stirling_gammaln` above (scipy's formula; bit-identical to scipy on 1 to 1e15
    as measured). Other inputs (fractions, ``x < 1``, ``nan``) give wrong numbers, not
    errors: callers make sure.

    Args:
        x: Whole numbers ``>= 1`` as float64, any shape.

    Returns:
        ``gammaln(x)``, same shape.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return np.zeros(x.shape)
    lo, hi = float(x.min()), float(x.max())
    if lo >= LGAMMA_TABLE_SIZE:
        return stirling_gammaln(x)
    idx = (np.minimum(x, LGAMMA_TABLE_SIZE - 1.0) if hi >= LGAMMA_TABLE_SIZE else x).astype(np.intp)
    out: FloatArray = _lgamma_table().take(idx, mode="clip")
    if hi >= LGAMMA_TABLE_SIZE:
        big = x >= LGAMMA_TABLE_SIZE
        out[big] = stirling_gammaln(x[big])
    return out


def _side_coefficients(z: float) -> tuple[float, ...]:
    """Cornish-Fisher ``x - 1 - m = z s + c0 + c1/s + c2/s^2 + c3/s^3`` for ``s = sqrt(m)``.

    The gamma(m) quantile at the normal quantile ``z``, from the cumulants of gamma(m).
    """
    return (
        z,
        (z * z - 1.0) / 3.0 - 1.0,
        (z**3 - 7.0 * z) / 36.0,
        -(3.0 * z**4 + 7.0 * z * z - 16.0) / 810.0,
        (9.0 * z**5 + 256.0 * z**3 - 433.0 * z) / 38880.0,
    )


#: Per side (low, high): the series coefficients, rows as in :func:`_side_coefficients`.
_SERIES = np.array([_side_coefficients(-_Z), _side_coefficients(_Z)]).T


@functools.cache
def _poisson_tables() -> tuple[FloatArray, FloatArray]:
    """Exact errors of whole ``m`` (``[side * SIZE + m]``) and the cubic's coefficients.

    The cubic interpolates ``h(s) = x - s^2 - z s - (z^2 - 1)/3`` (smooth and small)
    through the 4 grid points around ``s``; ``coef[k, side * n + j]`` multiplies ``t^k``
    on interval ``j`` (``t`` in ``[0, 1)``). About 5 ms to build, 200 kB.
    """
    q = np.array([[Q_LOW], [Q_HIGH]])
    m = np.arange(1.0, POISSON_TABLE_SIZE)
    table = np.zeros((2, POISSON_TABLE_SIZE))
    table[:, 1:] = np.abs(special.gammaincinv(m, q) - 1.0 - m)
    n_int = math.ceil((math.sqrt(POISSON_TABLE_SIZE) - _GRID_START) / _GRID_STEP) + 1
    s = _GRID_START + _GRID_STEP * np.arange(-1, n_int + 2)
    z = np.array([[-_Z], [_Z]])
    h = special.gammaincinv(s * s, q) - s * s - z * s - (z * z - 1.0) / 3.0
    v0, v1, v2, v3 = (h[:, k : k + n_int] for k in range(4))  # at t = -1, 0, 1, 2
    coef = np.stack(
        [
            v1,
            v2 - v0 / 3.0 - v1 / 2.0 - v3 / 6.0,
            (v0 + v2) / 2.0 - v1,
            (v3 - v0) / 6.0 + (v1 - v2) / 2.0,
        ]
    ).reshape(4, -1)
    for arr in (table, coef):
        arr.flags.writeable = False
    return table.ravel(), coef


def _series_error(m: FloatArray, side: NDArray[np.intp]) -> FloatArray:
    """The asymptotic series (for ``m >= POISSON_TABLE_SIZE``)."""
    s = np.sqrt(m)
    y = 1.0 / s
    c = _SERIES
    out: FloatArray = c[4].take(side)
    out *= y
    out += c[3].take(side)
    out *= y
    out += c[2].take(side)
    out *= y
    out += c[1].take(side)
    s *= c[0].take(side)
    out += s
    np.abs(out, out=out)
    return out


def _interp_error(m: FloatArray, side: NDArray[np.intp]) -> FloatArray:
    """The cubic on the grid in ``sqrt(m)`` (for ``POISSON_EXACT_BELOW <= m < SIZE``)."""
    _, coef = _poisson_tables()
    s = np.sqrt(m)
    u = s - _GRID_START
    u *= 1.0 / _GRID_STEP
    j = u.astype(np.intp)
    u -= j  # t
    j += side * (coef.shape[1] // 2)
    out: FloatArray = coef[3].take(j)
    for k in (2, 1, 0):
        out *= u
        out += coef[k].take(j)
    z = np.where(side == 1, _Z, -_Z)
    s *= z
    out += s
    out += (_Z * _Z - 1.0) / 3.0 - 1.0
    np.abs(out, out=out)
    return out


def poisson_side_error(m: FloatArray, high: NDArray[np.bool_]) -> FloatArray:
    """AutoDQM's asymmetric Poisson error ``|gammaincinv(m, q) - 1 - m|``, fast.

    ``q`` is :data:`Q_HIGH` where ``high`` else :data:`Q_LOW`; 0 where ``m <= 0`` (or nan).
    Whole ``m < POISSON_TABLE_SIZE`` come from an exact table (scipy's values), fractional
    ``m < 2`` from scipy itself, fractional ``m`` in ``[2, 1024)`` from a cubic on a grid
    in ``sqrt(m)`` (relative error <= 4e-10) and every ``m >= 1024`` from a 5-term
    Cornish-Fisher series (<= 6e-11 relative to scipy up to m = 1e9; beyond, it is the
    more accurate of the two, as it never forms ``x - m`` from two large numbers).

    Args:
        m: Bin contents, any shape (fractions allowed).
        high: Which side per bin, broadcast against ``m``.

    Returns:
        The errors, ``>= 0``, shaped like ``m``.
    """
    m, high = np.broadcast_arrays(np.asarray(m, dtype=np.float64), np.asarray(high, dtype=bool))
    shape = m.shape
    m, side = m.ravel(), high.ravel().astype(np.intp)
    out = np.zeros(m.size)
    big = m >= POISSON_TABLE_SIZE
    n_big = int(np.count_nonzero(big))
    if n_big == m.size:
        return _series_error(m, side).reshape(shape)
    if n_big:
        out[big] = _series_error(m[big], side[big])
    rest = (m > 0) & ~big
    if not rest.all():
        m_r, side_r = m[rest], side[rest]
    else:
        m_r, side_r = m, side
    out_r = np.zeros(m_r.size)
    whole = m_r == np.floor(m_r)
    table, _ = _poisson_tables()
    if whole.all():
        out_r = table.take(side_r * POISSON_TABLE_SIZE + m_r.astype(np.intp))
    else:
        if whole.any():
            out_r[whole] = table.take(
                side_r[whole] * POISSON_TABLE_SIZE + m_r[whole].astype(np.intp)
            )
        grid = ~whole & (m_r >= POISSON_EXACT_BELOW)
        if grid.any():
            out_r[grid] = _interp_error(m_r[grid], side_r[grid])
        exact = ~whole & ~grid
        if exact.any():
            q = np.where(side_r[exact] == 1, Q_HIGH, Q_LOW)
            out_r[exact] = np.abs(special.gammaincinv(m_r[exact], q) - 1.0 - m_r[exact])
    if rest.all():
        return out_r.reshape(shape)
    out[rest] = out_r
    return out.reshape(shape)
