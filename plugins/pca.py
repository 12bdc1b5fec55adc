"""Plugins layer: ``pca`` and ``autodqm_ml_pca``, reconstruction error of a trained PCA.

A model is data, not a file: its arrays are parameters (``components``, ``mean``,
``sse_cut`` in the config, or :meth:`PCA.from_model` from a parsed model); the comparators
do no I/O and no model file is read. Neither runs by default: ``history_pca`` learns a
PCA of each histogram's normal variation from its own history, with no training step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import NDArray

from engine.types import ComparisonResult, FloatArray, HistData, Status
from plugins._common import result, skipped, too_few_entries, usable_refs
from plugins.pull_values import bin_location

IndexArray = NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class _Reconstruction:
    """Shared parameters and logic; subclasses set how bins are chosen and errors summed."""

    name: ClassVar[str] = "_pca"
    plot_kind: ClassVar[str] = "overlay"
    dims: ClassVar[tuple[int, ...]] = (1, 2)

    model: str | None = None
    components: tuple[tuple[float, ...], ...] = ()
    mean: tuple[float, ...] = ()
    sse_cut: float | None = None
    min_entries: float = 10_000

    def __post_init__(self) -> None:
        if not (isinstance(self.min_entries, int | float) and self.min_entries >= 0):
            msg = f"{self.name}: min_entries must be a number >= 0, got {self.min_entries!r}"
            raise ValueError(msg)
        if not self.components:
            return
        widths = {len(c) for c in self.components}
        if len(widths) != 1 or 0 in widths:
            msg = (
                f"{self.name}: components must be equal-length, non-empty rows, "
                f"got widths {sorted(widths)!r}"
            )
            raise ValueError(msg)
        width = widths.pop()
        if len(self.mean) != width:
            msg = (
                f"{self.name}: mean must have {width} entries (one per component column), "
                f"got {len(self.mean)}"
            )
            raise ValueError(msg)
        if not np.all(np.isfinite(self.components)) or not np.all(np.isfinite(self.mean)):
            msg = f"{self.name}: components and mean must be finite numbers"
            raise ValueError(msg)
        cut = self.sse_cut
        if not (isinstance(cut, int | float) and np.isfinite(cut) and cut > 0):
            msg = f"{self.name}: a model needs sse_cut, a positive number; got {cut!r}"
            raise ValueError(msg)

    @classmethod
    def from_model(cls, model: Mapping[str, Any], **params: Any) -> Self:
        """Build the comparator from a parsed model file and config parameters.

        Args:
            model: The model as a mapping: ``components`` (or scikit-learn's
                ``components_``), ``mean`` (``mean_``) and optional ``sse_cut``,
                ``normalize`` / ``good_bins`` / ``n_components``.
            **params: Config parameters; they win over the model's values.

        Returns:
            The comparator.
        """
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            for key in (f.name, f.name + "_"):
                if key in model:
                    kwargs[f.name] = model[key]
                    break
        kwargs.update(params)
        for key in ("components",):
            if key in kwargs:
                kwargs[key] = tuple(tuple(float(v) for v in row) for row in kwargs[key])
        if "mean" in kwargs:
            kwargs["mean"] = tuple(float(v) for v in kwargs["mean"])
        if "good_bins" in kwargs:
            kwargs["good_bins"] = tuple(int(v) for v in kwargs["good_bins"])
        return cls(**kwargs)

    # Hooks (overridden by the two comparators).
    def _bins(self) -> IndexArray | None:
        """Flat indices of the bins the model sees (None: every bin)."""
        return None

    def _n_components(self) -> int:
        return len(self.components)

    def _normalise(self) -> bool:
        return True

    def _error(self, residual: FloatArray) -> float:
        return float(np.sum(residual**2))

    def compare(self, data: HistData, refs: Sequence[HistData]) -> ComparisonResult:
        """Reconstruct ``data`` from the model's components and judge the error."""
        if not self.components:
            reason = f"no trained PCA model configured for {data.path}"
            if self.model:
                reason += (" (model files are not read; give components and mean in the "
                           "config, or use history_pca)")  # fmt: skip
            return skipped(self.name, data, reason)
        x = np.asarray(data.counts, dtype=np.float64).ravel()
        comps = np.asarray(self.components, dtype=np.float64)[: self._n_components()]
        sel = self._bins()
        if sel is None and x.size != comps.shape[1]:
            reason = f"the model expects {comps.shape[1]} bins, the histogram has {x.size}"
            return skipped(self.name, data, reason)
        if sel is not None and int(sel.max()) >= x.size:
            reason = f"the model uses bin {int(sel.max())}, the histogram has {x.size} bins"
            return skipped(self.name, data, reason)
        n = float(x.sum())
        if n <= 0:
            usable, _ = usable_refs(data, refs)
            have = sum(r.total for r in usable)
            reason = (
                f"no entries in data, references have {have:.0f}"
                if usable
                else "no entries in data, and the model was trained on non-empty histograms"
            )
            zeros = np.zeros(data.values.shape)
            arrays = {"reco": zeros, "ref": zeros}
            return result(
                self.name,
                data,
                Status.FLAGGED,
                score=1.0,
                threshold=1.0,
                reason=reason,
                scores={"sse": 0.0},
                arrays=arrays,
            )
        if n < self.min_entries:
            return too_few_entries(self.name, data, n, self.min_entries)

        scale = n if self._normalise() else 1.0
        xn = x / scale
        idx = np.arange(x.size) if sel is None else sel
        xs = xn[idx]
        mean = np.asarray(self.mean, dtype=np.float64)
        reco = ((xs - mean) @ comps.T) @ comps + mean
        residual = xs - reco
        err = self._error(residual)
        assert self.sse_cut is not None  # checked in __post_init__ when components exist
        score = err / self.sse_cut
        reco_full = np.zeros(x.size)
        reco_full[idx] = reco
        worst = int(idx[int(np.argmax(np.abs(residual)))])
        where = bin_location(
            data, tuple(int(i) for i in np.unravel_index(worst, data.values.shape))
        )
        cmp = ">" if score > 1.0 else "<="
        reason = (
            f"reconstruction error {err:.3g} {cmp} sse_cut {self.sse_cut:g} with "
            f"{comps.shape[0]} components, largest residual at {where}"
        )
        arrays = {
            "reco": reco_full.reshape(data.values.shape),
            "ref": (reco_full * scale).reshape(data.values.shape),
        }
        return result(
            self.name,
            data,
            Status.FLAGGED if score > 1.0 else Status.OK,
            score=score,
            threshold=1.0,
            reason=reason,
            scores={"sse": err},
            arrays=arrays,
        )


@dataclass(frozen=True, slots=True)
class PCA(_Reconstruction):
    """AutoDQM's legacy ``pca`` test: PCA reconstruction error of a unit-area histogram.

    The data is normalised to unit area, restricted to the model's ``good_bins`` (all
    bins when empty), projected on its first ``n_components`` components (all when None)
    around ``mean`` and reconstructed; the error is the Euclidean norm of the residual,
    ``sqrt(sum((x - reco)**2))``, which AutoDQM reports as "sum of squared errors".
    Flagged when the data has at least ``min_entries`` entries and the error exceeds
    ``sse_cut`` (AutoDQM took the cut from the model); ``score = error / sse_cut``.
    Without a model (``components`` empty) the result is SKIPPED; references are not used.
    """

    name: ClassVar[str] = "pca"
    good_bins: tuple[int, ...] = ()
    n_components: int | None = None

    def __post_init__(self) -> None:
        _Reconstruction.__post_init__(self)
        k = self.n_components
        if k is not None and not (isinstance(k, int) and 1 <= k <= max(len(self.components), 1)):
            msg = f"pca: n_components must be 1..{len(self.components)} or None, got {k!r}"
            raise ValueError(msg)
        if self.good_bins and self.components and len(self.good_bins) != len(self.mean):
            msg = (
                f"pca: good_bins has {len(self.good_bins)} entries, "
                f"the model has {len(self.mean)} columns"
            )
            raise ValueError(msg)
        if any(b < 0 for b in self.good_bins) or len(set(self.good_bins)) != len(self.good_bins):
            msg = f"pca: good_bins must be distinct bin indices >= 0, got {self.good_bins!r}"
            raise ValueError(msg)

    def _bins(self) -> IndexArray | None:
        return np.asarray(self.good_bins, dtype=np.intp) if self.good_bins else None

    def _n_components(self) -> int:
        return self.n_components or len(self.components)

    def _error(self, residual: FloatArray) -> float:
        return float(np.sqrt(np.sum(residual**2)))


@dataclass(frozen=True, slots=True)
class AutoDQMMLPCA(_Reconstruction):
    """AutoDQM-ML's ``autodqm_ml_pca``: PCA trained on good runs, error = sum of squares.

    The data (normalised to unit area when ``normalize``, as at training) is projected on
    every model component around ``mean`` and reconstructed; the score statistic is
    ``sse = sum((x - reco)**2)`` over all bins. AutoDQM showed every such plot without a
    cut; here the model must come with ``sse_cut`` (e.g. a high quantile of the SSE on the
    training runs) and ``score = sse / sse_cut``. Without a model the result is SKIPPED.
    """

    name: ClassVar[str] = "autodqm_ml_pca"
    normalize: bool = True

    def _normalise(self) -> bool:
        return bool(self.normalize)
