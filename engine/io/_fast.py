"""Engine layer: a fast, strict decoder of TH1x/TH2x objects from their key's raw bytes.

Reads one key's uncompressed bytes with ``struct`` and numpy, several times faster
than uproot's generic deserialisation. It accepts exactly the class versions ROOT 6
and uproot 5 write (TH1x v3, TH2x v4, TH1 v8, TH2 v5, TNamed v1, TAttLine/TAttFill v2,
TAttMarker v2/v3 (same layout), TAxis v10, TAttAxis v4, TList v5, TObjString v1,
TObject v1), checks every byte count, the cell counts and the total length, and
raises :class:`Unsupported` for anything else (custom axis labels (fModLabs),
referenced objects, other versions ...) so that the caller falls back to uproot. The
result equals :func:`engine.io._convert.to_histdata` of uproot's model.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from engine.io._convert import place_labels
from engine.io._rootbuf import BYTE_COUNT, I4, U4, RootBuffer, Unsupported
from engine.types import FloatArray, HistData, HistKind

__all__ = ["FAST_CLASSES", "Unsupported", "decode", "read_key"]

# Fixed runs of members, each with the byte counts/versions that must precede them.
_ATTS = struct.Struct(">IHhhhIHhhIHhhfi")  # TAttLine, TAttFill, TAttMarker; fNcells
_ATTS_OK = (BYTE_COUNT | 8, 2, BYTE_COUNT | 6, 2, BYTE_COUNT | 10)  # TAttMarker v2 or v3
_ATT_AXIS = struct.Struct(">IHihhhfffffhhidd")  # TAttAxis; fNbins, fXmin, fXmax
_ATT_AXIS_OK = (BYTE_COUNT | 36, 4)
_AXIS_FLAGS = 11  # fFirst, fLast (int32), fBits2 (uint16), fTimeDisplay (bool)
_TH1_STATS = struct.Struct(">hhdddddddd")  # fBarOffset, fBarWidth, fEntries ... fNormFactor
_TH1_TAIL = 8  # fBinStatErrOpt, fStatOverflows
_TH2_STATS = 32  # fScalefactor, fTsumwy, fTsumwy2, fTsumwxy
_F8 = np.dtype(">f8")


class _Spec(NamedTuple):
    version: int
    two_d: bool
    dtype: np.dtype[Any]


_STORAGE = {"C": ">i1", "S": ">i2", "I": ">i4", "F": ">f4", "D": ">f8"}

#: Classes this decoder reads: class version, whether 2D, storage of the contents.
FAST_CLASSES: Mapping[str, _Spec] = {
    **{f"TH1{t}": _Spec(3, False, np.dtype(c)) for t, c in _STORAGE.items()},
    **{f"TH2{t}": _Spec(4, True, np.dtype(c)) for t, c in _STORAGE.items()},
}


@lru_cache(maxsize=256)
def _uniform(nbins: int, range_bytes: bytes) -> FloatArray:
    """``np.linspace(xmin, xmax, nbins + 1)``, cached by the exact bytes of the range."""
    xmin, xmax = struct.unpack(">dd", range_bytes)
    out = np.linspace(xmin, xmax, nbins + 1)
    out.flags.writeable = False
    return out


class _Axis(NamedTuple):
    nbins: int
    range_bytes: bytes  # fXmin, fXmax as stored
    xbins: NDArray[Any]
    title: str
    labels: tuple[str, ...] | None

    def edges(self) -> FloatArray:
        """As uproot's ``TAxis.edges()``: fXbins if it has nbins + 1 entries, else uniform."""
        if len(self.xbins) == self.nbins + 1:
            return self.xbins.astype(np.float64)
        return _uniform(self.nbins, self.range_bytes).copy()


def _axis(r: RootBuffer) -> _Axis:
    """TAxis (version 10) with TAttAxis (version 4); fModLabs must be null."""
    stop = r.begin(10, "TAxis")
    title = r.named()
    head = r.take(_ATT_AXIS)
    if head[:2] != _ATT_AXIS_OK:
        msg = f"TAttAxis header {head[0]:#x} version {head[1]}"
        raise Unsupported(msg)
    nbins = int(head[13])
    if not 1 <= nbins <= len(r.buf):  # each bin needs at least a byte of contents
        msg = f"axis with {nbins} bins"
        raise Unsupported(msg)
    range_bytes = r.buf[r.pos - 16 : r.pos]
    xbins = r.array(_F8)
    r.pos += _AXIS_FLAGS
    r.string()  # fTimeFormat
    stored = r.labels()
    labels = None if stored is None else place_labels(*stored, nbins)
    if r.take(U4)[0] != 0:
        msg = "axis with modified labels (fModLabs)"
        raise Unsupported(msg)
    r.end(stop, "TAxis")
    return _Axis(nbins, range_bytes, xbins, title, labels)


def decode(buf: bytes, classname: str, keylen: int, path: str, run: int) -> HistData:
    """Decode one TH1x/TH2x from its uncompressed key bytes.

    Args:
        buf: The object's uncompressed bytes (``fObjlen`` of them).
        classname: The key's class name, one of :data:`FAST_CLASSES`.
        keylen: The key's ``fKeylen`` (class tags count from the key start).
        path: ``HistData.path``.
        run: ``HistData.run``.

    Returns:
        The same :class:`HistData` as ``to_histdata`` of uproot's model.

    Raises:
        Unsupported: Anything outside the layouts this decoder knows, or any
            inconsistency (byte counts, cell counts, length).
    """
    spec = FAST_CLASSES.get(classname)
    if spec is None:
        msg = f"class {classname}"
        raise Unsupported(msg)
    r = RootBuffer(buf, keylen)
    try:
        stop = r.begin(spec.version, classname)
        stop_th2 = r.begin(5, "TH2") if spec.two_d else 0
        stop_th1 = r.begin(8, "TH1")
        title = r.named()
        atts = r.take(_ATTS)
        if (*atts[:2], *atts[5:7], atts[9]) != _ATTS_OK or atts[10] not in (2, 3):
            msg = f"TAttLine/TAttFill/TAttMarker headers {atts[:11]}"
            raise Unsupported(msg)
        ncells = int(atts[14])
        axes = (_axis(r), _axis(r), _axis(r))
        entries = float(r.take(_TH1_STATS)[2])
        r.array(_F8)  # fContour
        sumw2 = r.array(_F8)
        r.string()  # fOption
        r.skip_list("fFunctions")  # fitted functions, stats boxes: not needed
        (buffer_size,) = r.take(I4)
        r.pos += 1 + 8 * buffer_size + _TH1_TAIL  # is-array byte, fBuffer, 2 enums
        r.end(stop_th1, "TH1")
        if spec.two_d:
            r.pos += _TH2_STATS
            r.end(stop_th2, "TH2")
        contents = r.array(spec.dtype)
        r.end(stop, classname)
    except (struct.error, ValueError, IndexError) as err:
        msg = f"{type(err).__name__}: {err}"
        raise Unsupported(msg) from err
    if r.pos != len(buf):
        msg = f"{len(buf) - r.pos} bytes after the {classname}"
        raise Unsupported(msg)
    return _histdata(spec, contents, sumw2, ncells, axes, (title, entries, path, run))


def _histdata(
    spec: _Spec,
    contents: NDArray[Any],
    sumw2: NDArray[Any],
    ncells: int,
    axes: tuple[_Axis, _Axis, _Axis],
    meta: tuple[str, float, str, int],
) -> HistData:
    """Arrays as uproot's TH1/TH2 behaviours give them (flow bins cut, 2D as [x, y])."""
    nx, ny = axes[0].nbins + 2, axes[1].nbins + 2
    if not ncells == len(contents) == (nx * ny if spec.two_d else nx):
        msg = f"{len(contents)} cells stored, fNcells={ncells}, axes give {nx}x{ny}"
        raise Unsupported(msg)
    # uproot: variances from fSumw2 if it has one entry per cell, else from the
    # contents; only positive ones are kept (0 for negative or NaN).
    w2 = sumw2 if len(sumw2) == ncells else contents
    if spec.two_d:  # stored with x fastest: [y, x] -> [x, y], flow bins cut
        values = np.array(contents.reshape(ny, nx)[1:-1, 1:-1].T, np.float64, order="C")
        variances = np.array(w2.reshape(ny, nx)[1:-1, 1:-1].T, np.float64, order="C")
    else:
        values = np.array(contents[1:-1], np.float64)
        variances = np.array(w2[1:-1], np.float64)
    variances[~(variances > 0)] = 0.0
    ndim = 2 if spec.two_d else 1
    title, entries, path, run = meta
    return HistData(
        path=path,
        run=run,
        values=values,
        variances=variances,
        edges=tuple(ax.edges() for ax in axes[:ndim]),
        title=title,
        kind=HistKind.TH2 if spec.two_d else HistKind.TH1,
        entries=entries,
        bin_entries=None,
        labels=tuple(ax.labels for ax in axes[:ndim]),
        axis_titles=(axes[0].title, axes[1].title),
    )


def read_key(key: Any, path: str, run: int) -> HistData:
    """Decode the TH1x/TH2x behind an uproot ``ReadOnlyKey`` (public key API only).

    Uses ``key.fClassName``, ``key.fKeylen``, ``key.fObjlen`` and
    ``key.get_uncompressed_chunk_cursor()`` (uproot's own decompression), then
    :func:`decode`.

    Raises:
        Unsupported: As :func:`decode`; uproot's errors on corrupt bytes propagate.
    """
    classname = str(key.fClassName)
    if classname not in FAST_CLASSES:
        msg = f"class {classname}"
        raise Unsupported(msg)
    chunk, _ = key.get_uncompressed_chunk_cursor()
    buf = chunk.raw_data.tobytes()
    if len(buf) != key.fObjlen:
        msg = f"{len(buf)} bytes decompressed, the key says {key.fObjlen}"
        raise Unsupported(msg)
    return decode(buf, classname, int(key.fKeylen), path, run)
