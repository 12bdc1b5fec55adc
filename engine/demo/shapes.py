"""Engine layer (demo data): expected-shape builders for the demo histogram catalogue.

A *shape* is a callable ``(shift_bins, width_scale) -> density`` over a histogram's bins
(non-negative, any normalisation). Peaked shapes honour the shift (in bins of the
peaked axis) and the width scale; fixed maps ignore both. Everything is vectorised.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import gammainc, ndtr

from engine.types import FloatArray

Shape = Callable[[float, float], FloatArray]


class Peaked:
    """A shape with a peak (or edge) of width ``sigma_bins`` bins along its peaked axis.

    Run-to-run position jitter and injected timing shifts are scaled to that width.
    """

    __slots__ = ("fn", "sigma_bins")

    def __init__(self, fn: Shape, sigma_bins: float) -> None:
        self.fn = fn
        self.sigma_bins = sigma_bins

    def __call__(self, shift: float, scale: float) -> FloatArray:
        return self.fn(shift, scale)


def sigma_bins(shape: Shape) -> float:
    """Width of ``shape``'s peak in bins (1 for shapes without a peak)."""
    return shape.sigma_bins if isinstance(shape, Peaked) else 1.0


def edges(n: int, lo: float, hi: float) -> FloatArray:
    """``n`` uniform bins from ``lo`` to ``hi`` (ROOT's ``book1D(n, lo, hi)``)."""
    return np.linspace(lo, hi, n + 1)


def _bin_width(e: FloatArray) -> float:
    return float((e[-1] - e[0]) / (len(e) - 1))


def gauss_peak(e: FloatArray, mu: float, sigma: float, bkg: float = 0.01) -> Shape:
    """A Gaussian peak (integrated over each bin) on a flat background fraction ``bkg``."""
    bw = _bin_width(e)

    def shape(shift: float, scale: float) -> FloatArray:
        m, s = mu + shift * bw, sigma * scale
        peak: FloatArray = np.diff(ndtr((e - m) / s))
        return (1.0 - bkg) * peak + bkg / (len(e) - 1)

    return Peaked(shape, sigma / bw)


def drift_box(e: FloatArray, t0: float, width: float, edge: float, bkg: float = 0.02) -> Shape:
    """A DT drift-time box: smeared rising edge at ``t0``, falling edge at ``t0 + width``.

    ``width_scale`` stretches the box (a drift-velocity change); a small slope on the
    plateau mimics the real time box.
    """
    bw = _bin_width(e)
    c = 0.5 * (e[1:] + e[:-1])

    def shape(shift: float, scale: float) -> FloatArray:
        a = t0 + shift * bw
        b = a + width * scale
        box: FloatArray = ndtr((c - a) / edge) - ndtr((c - b) / edge)
        slope = 1.0 + 0.25 * np.clip((c - a) / (b - a), 0.0, 1.0)
        return box * slope / scale + bkg

    return Peaked(shape, edge / bw)


def gamma_like(e: FloatArray, k: float, theta: float, offset: float = 0.0) -> Shape:
    """A gamma distribution integrated over each bin (multiplicities, cluster sizes, chi²).

    ``width_scale`` scales ``theta`` (the spread), ``shift`` moves it by whole bins. Bins
    below ``offset`` are empty: integrating (not sampling the density at bin centres)
    keeps a bin that straddles the origin from jumping with a tiny shift.
    """
    bw = _bin_width(e)

    def shape(shift: float, scale: float) -> FloatArray:
        x = np.clip((e - offset - shift * bw) / (theta * scale), 0.0, None)
        return np.diff(gammainc(k, x))

    return shape


def falling(e: FloatArray, slope: float, power: float = 0.0) -> Shape:
    """A falling spectrum ``x^-power · exp(-x/slope)`` (track pT and similar)."""
    c = 0.5 * (e[1:] + e[:-1])

    def shape(shift: float, scale: float) -> FloatArray:
        x = np.clip(c, 1e-3, None)
        return x ** (-power) * np.exp(-x / (slope * scale))

    return shape


def pmf(probabilities: list[float]) -> Shape:
    """A fixed discrete distribution (e.g. hits per segment)."""
    p = np.asarray(probabilities, dtype=np.float64)
    return fixed(p)


def fixed(arr: FloatArray) -> Shape:
    """A shape that ignores shift and width scale (occupancy maps, fixed patterns)."""
    a = np.asarray(arr, dtype=np.float64)

    def shape(shift: float, scale: float) -> FloatArray:
        return a

    return shape


def modulated(e: FloatArray, period: float, depth: float) -> Shape:
    """A flat distribution with periodic dips (chamber boundaries in phi)."""
    c = 0.5 * (e[1:] + e[:-1])
    return fixed(1.0 - depth * np.cos(2.0 * np.pi * c / period) ** 8)


def bx_rows(nbx: int, row_rates: FloatArray, sigma: float = 0.35) -> Shape:
    """A BX x row map: each row a Gaussian around BX 0 (the central bin), rates per row.

    Rows are on the y axis (``values[x, y]`` indexing), BX on x.
    """
    e = np.arange(nbx + 1, dtype=np.float64) - 0.5 - nbx // 2
    rates = np.asarray(row_rates, dtype=np.float64)

    def shape(shift: float, scale: float) -> FloatArray:
        prof = np.diff(ndtr((e - shift) / (sigma * scale))) + 1e-3
        return np.outer(prof, rates)

    return Peaked(shape, sigma)


def outer_peak(weights_x: FloatArray, ey: FloatArray, mu: float, sigma: float, bkg: float) -> Shape:
    """A map whose x axis is a fixed profile and whose y axis is a Gaussian peak."""
    w = np.asarray(weights_x, dtype=np.float64)
    peak = gauss_peak(ey, mu, sigma, bkg)

    def shape(shift: float, scale: float) -> FloatArray:
        return np.outer(w, peak(shift, scale))

    return Peaked(shape, sigma_bins(peak))


def annulus_xy(e: FloatArray, r_in: float, r_out: float, n_chambers: int, rng_seed: int) -> Shape:
    """Global X-Y hit map of one endcap station: an annulus with chamber structure."""
    c = 0.5 * (e[1:] + e[:-1])
    x, y = np.meshgrid(c, c, indexing="ij")
    r = np.hypot(x, y)
    phi = np.arctan2(y, x)
    ring = ndtr((r - r_in) / 15.0) * ndtr((r_out - r) / 15.0)
    gaps = 1.0 - 0.35 * np.cos(phi * n_chambers / 2.0) ** 16
    rng = np.random.default_rng(rng_seed)
    chamber_gain = rng.lognormal(0.0, 0.06, n_chambers)
    idx = ((phi + np.pi) / (2 * np.pi) * n_chambers).astype(int) % n_chambers
    return fixed(ring * gaps * chamber_gain[idx] * (r_in + 200.0) / np.maximum(r, r_in))


def wobble(
    rng: np.random.Generator, shape: tuple[int, ...], amp: float, noise: float
) -> FloatArray:
    """Run-to-run systematic distortion: smooth cosines per axis times per-bin jitter.

    Args:
        rng: The run's generator.
        shape: The histogram's bin shape.
        amp: Standard deviation of each smooth harmonic's relative amplitude.
        noise: Standard deviation of the independent per-bin relative jitter.

    Returns:
        A multiplicative factor array of ``shape`` with values near 1.
    """
    out = np.ones(shape)
    for axis, n in enumerate(shape):
        t = (np.arange(n) + 0.5) / n
        a = rng.normal(0.0, amp, 2)
        ph = rng.uniform(0.0, 2 * np.pi, 2)
        f = 1.0 + a[0] * np.cos(np.pi * t + ph[0]) + a[1] * np.cos(2 * np.pi * t + ph[1])
        out = out * f.reshape([-1 if i == axis else 1 for i in range(len(shape))])
    return np.clip(out * (1.0 + rng.normal(0.0, noise, shape)), 0.0, None)
