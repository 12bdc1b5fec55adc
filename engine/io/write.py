"""Engine layer: write :class:`~engine.types.HistData` to a DQM-layout ROOT file (uproot).

Used for demo data, tests and exports. Writes to a temporary file in the target
directory and renames it at the end, so a crash never leaves a half file behind.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import uproot
from uproot.writing.identify import (
    add_to_directory,
    to_TAxis,
    to_TH1x,
    to_TH2x,
    to_THashList,
    to_TObjString,
    to_TProfile,
    to_TProfile2D,
)

from engine.types import FloatArray, HistData, HistKind

logger = logging.getLogger(__name__)

#: numpy types accepted as ``float_type`` and the ROOT storage they select.
_STORAGE = (np.float32, np.float64, np.int32, np.int16, np.int8)


def _labels(names: Sequence[str]) -> Any:
    """THashList of the non-empty labels; ROOT finds each label's bin in fUniqueID."""
    objs, bins = [], []
    for i, name in enumerate(names):
        if name:
            objs.append(to_TObjString(name))
            bins.append(i + 1)
    out = to_THashList(objs)
    for obj, b in zip(out, bins, strict=True):
        obj._bases[0]._members["@fUniqueID"] = b  # no public setter; ROOT needs the bin
    return out


def _axis(name: str, title: str, edges: FloatArray, labels: Sequence[str] | None) -> Any:
    edges = np.asarray(edges, dtype=np.float64)
    n = len(edges) - 1
    uniform = np.array_equal(np.linspace(edges[0], edges[-1], n + 1), edges)
    return to_TAxis(
        name,
        title,
        n,
        float(edges[0]),
        float(edges[-1]),
        fXbins=None if uniform else edges,
        fLabels=_labels(labels) if labels and any(labels) else None,
    )


def _flow(a: FloatArray, dtype: Any = np.float64) -> Any:
    """ROOT's flat cell array: zero flow bins added, 2D stored with x varying fastest."""
    a = np.asarray(a, dtype=np.float64)
    full = np.zeros([n + 2 for n in reversed(a.shape)])  # [y, x]: x fastest
    full[(slice(1, -1),) * a.ndim] = a.T
    if np.issubdtype(dtype, np.integer):
        np.rint(full, out=full)
    return full.reshape(-1).astype(dtype)


def _centres(edges: FloatArray) -> FloatArray:
    return 0.5 * (edges[1:] + edges[:-1])


def _moments(w: FloatArray, edges: tuple[FloatArray, ...]) -> dict[str, float]:
    """ROOT's fTsumwx, fTsumwx2 (and y, xy for 2D) of per-bin weights ``w``."""
    cx = _centres(edges[0])
    if w.ndim == 1:
        return {"fTsumwx": float(w @ cx), "fTsumwx2": float(w @ cx**2)}
    cy = _centres(edges[1])
    wx, wy = w.sum(axis=1), w.sum(axis=0)
    return {
        "fTsumwx": float(wx @ cx),
        "fTsumwx2": float(wx @ cx**2),
        "fTsumwy": float(wy @ cy),
        "fTsumwy2": float(wy @ cy**2),
        "fTsumwxy": float(cx @ w @ cy),
    }


def _root_object(h: HistData, name: str, float_type: type) -> Any:
    """The uproot writable model (TH1x, TH2x, TProfile, TProfile2D) for ``h``."""
    values = np.asarray(h.values, dtype=np.float64)
    if values.ndim not in (1, 2) or len(h.edges) != values.ndim:
        msg = f"{h.path!r}: expected 1D or 2D values with one edges array per axis"
        raise ValueError(msg)
    edges = tuple(np.asarray(e, dtype=np.float64) for e in h.edges)
    if tuple(len(e) - 1 for e in edges) != values.shape:
        msg = f"{h.path!r}: values shape {values.shape} does not match edges"
        raise ValueError(msg)
    titles = (*h.axis_titles, "", "")
    labels = (*h.labels, None, None)
    xaxis = _axis("xaxis", titles[0], edges[0], labels[0])
    if values.ndim == 2:
        yaxis = _axis("yaxis", titles[1], edges[1], labels[1])
    else:
        yaxis = to_TAxis("yaxis", titles[1], 1, 0.0, 1.0)
    var = values if h.variances is None else np.asarray(h.variances, dtype=np.float64)
    if h.kind in (HistKind.PROFILE, HistKind.PROFILE2D):
        return _profile(h, name, values, var, edges, xaxis, yaxis)
    entries = h.entries if np.isfinite(h.entries) else float(values.sum())
    common: dict[str, Any] = {
        "fEntries": entries,
        "fTsumw": float(values.sum()),
        "fTsumw2": float(var.sum()),
        "fSumw2": _flow(var),
        "fXaxis": xaxis,
        "fYaxis": yaxis,
        **_moments(values, edges),
    }
    data = _flow(values, float_type)
    if values.ndim == 1:
        return to_TH1x(name, h.title, data, **common)
    return to_TH2x(name, h.title, data, **common)


def _profile(
    h: HistData,
    name: str,
    means: FloatArray,
    var: FloatArray,
    edges: tuple[FloatArray, ...],
    xaxis: Any,
    yaxis: Any,
) -> Any:
    """A TProfile(2D) that reads back as ``means`` ± ``sqrt(var)`` with ``bin_entries``.

    With unit weights per entry (fBinEntries = fBinSumw2 = n) ROOT's error on the mean
    is ``sqrt(fSumw2/n - mean²) / sqrt(n)``, so ``fSumw2 = n·(n·var + mean²)`` and the
    bin content (sum of y) is ``n·mean``.
    """
    if h.bin_entries is None:
        msg = f"{h.path!r}: a {h.kind} needs bin_entries (entries per bin) to be written"
        raise ValueError(msg)
    n = np.asarray(h.bin_entries, dtype=np.float64)
    sumy = n * means
    sumy2 = n * (n * var + means**2)
    stats: dict[str, Any] = {
        "fEntries": h.entries if np.isfinite(h.entries) else float(n.sum()),
        "fTsumw": float(n.sum()),
        "fTsumw2": float(n.sum()),
        "fSumw2": _flow(sumy2),
        "fBinEntries": _flow(n),
        "fBinSumw2": _flow(n),
        "fXaxis": xaxis,
        "fYaxis": yaxis,
        **_moments(n, edges),
    }
    if means.ndim == 1:
        stats.update(fTsumwy=float(sumy.sum()), fTsumwy2=float(sumy2.sum()))
        return to_TProfile(name, h.title, _flow(sumy), **stats)
    stats.update(fTsumwz=float(sumy.sum()), fTsumwz2=float(sumy2.sum()))
    return to_TProfile2D(name, h.title, _flow(sumy), **stats)


def _add_named(directory: Any, name: str, obj: Any, streamers: list[Any]) -> None:
    """Add ``obj`` under a key ``name`` that may contain '/'.

    DQM scalar keys such as ``<iRun>i=1</iRun>`` contain '/', and uproot's public
    ``file[path] = obj`` splits on '/' (creating bogus sub-directories). uproot's
    ``add_to_directory`` is private API (uproot 5), measured to give keys that ROOT
    lists and reads correctly; keep its use confined to this function.
    """
    add_to_directory(obj, name, directory, streamers)


class _MemorySink(io.BytesIO):
    """A BytesIO that stays readable after uproot closes it at the end of writing."""

    def close(self) -> None:
        """Keep the buffer: uproot closes its sink, the bytes are taken afterwards."""


def write_dqm(
    path: str | os.PathLike[str],
    hists: Mapping[str, HistData],
    *,
    strings: Iterable[tuple[str, str]] = (),
    float_type: type = np.float32,
) -> None:
    """Write histograms (and DQM scalar keys) to a new ROOT file, atomically.

    Args:
        path: Destination file; replaced only once the whole file is written.
        hists: In-file path (``'DQMData/Run 1/CSC/Run summary/X/h'``) -> histogram.
            TH1/TH2 kinds become TH1F/TH2F (or D/I/S/C by ``float_type``);
            profiles become TProfile/TProfile2D (always double precision) and need
            ``bin_entries``.
        strings: ``(directory, key name)`` pairs, e.g.
            ``('DQMData/Run 1/CSC/Run summary/EventInfo', '<iRun>i=1</iRun>')``,
            each written as a TObjString whose key name and content are that text.
        float_type: Storage of plain histograms: np.float32 (default), np.float64,
            np.int32, np.int16 or np.int8.

    Raises:
        ValueError: Inconsistent histogram arrays or an unsupported ``float_type``.
        OSError: The file could not be written (nothing is left at ``path``).
    """
    if float_type not in _STORAGE:
        msg = f"float_type must be one of {[t.__name__ for t in _STORAGE]}, not {float_type!r}"
        raise ValueError(msg)
    dest = Path(path)
    by_dir: dict[str, dict[str, HistData]] = {}
    for key, h in hists.items():
        directory, _, name = key.strip("/").rpartition("/")
        by_dir.setdefault(directory, {})[name] = h
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        # uproot's many small writes and seeks go to memory, the file gets one write.
        sink = _MemorySink()
        with uproot.recreate(sink) as f:
            for directory, named in by_dir.items():  # one directory's objects alive at a time
                objects = {n: _root_object(h, n, float_type) for n, h in named.items()}
                (f.mkdir(directory) if directory else f).update(objects)
            streamers: list[Any] = []
            for directory, name in strings:
                d = f.mkdir(directory.strip("/")) if directory.strip("/") else f
                _add_named(d, name, name, streamers)
            if streamers:
                f.file._cascading.streamers.update_streamers(f.file.sink, streamers)
        tmp.write_bytes(sink.getvalue())
        tmp.replace(dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    n_hists = sum(len(named) for named in by_dir.values())
    logger.debug("wrote %s: %d histograms, %d strings", dest, n_hists, len(streamers))
