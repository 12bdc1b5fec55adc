"""Engine layer: a fast, strict decoder of TH1x/TH2x objects from their key's raw bytes.

Reads the uncompressed bytes of one ``TKey`` with ``struct`` and numpy only, about ten
times faster than uproot's generic deserialisation. It accepts exactly the class
versions that ROOT 6 and uproot 5 write (TH1x v3, TH2x v4, TH1 v8, TH2 v5, TNamed v1,
TAttLine/TAttFill/TAttMarker v2, TAxis v10, TAttAxis v4, TList v5, TObjString v1,
TObject v1), checks every byte count, the cell count and the total length, and raises
:class:`Unsupported` for anything else (fitted functions, buffered histograms, custom
axis labels, references to earlier objects ...) so that the caller falls back to
uproot. It never guesses: the result equals :func:`engine.io._convert.to_histdata` of
uproot's model, value for value.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from engine.io._convert import place_labels
from engine.types import FloatArray, HistData, HistKind

_BYTE_COUNT = 0x40000000  # kByteCountMask: a byte count precedes the version
_CLASS_TAG = 0x80000000  # kClassMask: a tag naming a class, not an object
_NEW_CLASS = 0xFFFFFFFF  # kNewClassTag: the class name follows, NUL-terminated
_MAP_OFFSET = 2  # kMapOffset: class tags count from the key start plus 2
_IS_REFERENCED = 1 << 4  # TObject kIsReferenced: 2 bytes of process id follow

_HEADER = struct.Struct(">IH")  # byte count | mask, version
_TOBJECT = struct.Struct(">hII")  # version, fUniqueID, fBits
_B1 = struct.Struct(">B")
_I4 = struct.Struct(">i")
_U4 = struct.Struct(">I")
_ATT_LINE = struct.Struct(">hhh")
_ATT_FILL = struct.Struct(">hh")
_ATT_MARKER = struct.Struct(">hhf")
_ATT_AXIS = struct.Struct(">ihhhfffffhh")
_AXIS_RANGE = struct.Struct(">idd")  # fNbins, fXmin, fXmax
_AXIS_FLAGS = struct.Struct(">iiH?")  # fFirst, fLast, fBits2, fTimeDisplay
_TH1_STATS = struct.Struct(">hhdddddddd")  # fBarOffset, fBarWidth, fEntries, ... fNormFactor
_TH1_TAIL = struct.Struct(">ii")  # fBinStatErrOpt, fStatOverflows
_TH2_STATS = struct.Struct(">dddd")  # fScalefactor, fTsumwy, fTsumwy2, fTsumwxy
_F8 = np.dtype(">f8")


class Unsupported(Exception):
    """The bytes are not in a layout this decoder reads; use uproot instead."""


class _Spec(NamedTuple):
    version: int
    two_d: bool
    dtype: np.dtype[Any]


#: Classes this decoder reads: class version, whether 2D, storage of the contents.
FAST_CLASSES: Mapping[str, _Spec] = {
    **{f"TH1{t}": _Spec(3, False, np.dtype(f">{c}")) for t, c in zip("CSIFD", ["i1", "i2", "i4", "f4", "f8"], strict=True)},
    **{f"TH2{t}": _Spec(4, True, np.dtype(f">{c}")) for t, c in zip("CSIFD", ["i1", "i2", "i4", "f4", "f8"], strict=True)},
}


class _Axis(NamedTuple):
    nbins: int
    edges: FloatArray
    title: str
    labels: tuple[str, ...] | None


class _Reader:
    """A position in one object's bytes; every read checks bounds (struct/numpy raise)."""

    __slots__ = ("buf", "classes", "keylen", "pos")

    def __init__(self, buf: bytes, keylen: int) -> None:
        self.buf = buf
        self.pos = 0
        self.keylen = keylen
        self.classes: dict[int, str] = {}  # class tag -> class name, as ROOT numbers them

    def take(self, fmt: struct.Struct) -> tuple[Any, ...]:
        out = fmt.unpack_from(self.buf, self.pos)
        self.pos += fmt.size
        return out

    def begin(self, version: int, what: str) -> int:
        """Read a byte count and version; return the position the object must end at."""
        count, found = self.take(_HEADER)
        if not count & _BYTE_COUNT or found != version:
            msg = f"{what} version {found} (byte count {count:#x}), expected {version}"
            raise Unsupported(msg)
        return self.pos - 2 + (count & ~_BYTE_COUNT)

    def end(self, stop: int, what: str) -> None:
        if self.pos != stop:
            msg = f"{what} ends at byte {self.pos}, its byte count says {stop}"
            raise Unsupported(msg)

    def skip(self, version: int, fmt: struct.Struct, what: str) -> None:
        """A versioned object of fixed size whose members are not needed."""
        stop = self.begin(version, what)
        self.pos += fmt.size
        self.end(stop, what)

    def tobject(self) -> int:
        """TObject (version 1); returns fUniqueID."""
        version, unique_id, bits = self.take(_TOBJECT)
        if version != 1:
            msg = f"TObject version {version}, expected 1"
            raise Unsupported(msg)
        if bits & _IS_REFERENCED:
            self.pos += 2
        return int(unique_id)

    def string(self) -> str:
        """TString: 1-byte length (255: a 4-byte length follows), then UTF-8 bytes."""
        (n,) = self.take(_B1)
        if n == 255:
            (n,) = self.take(_I4)
        stop = self.pos + n
        if n < 0 or stop > len(self.buf):
            msg = f"string of {n} bytes at byte {self.pos} overruns the object"
            raise Unsupported(msg)
        text = self.buf[self.pos : stop].decode(errors="surrogateescape")
        self.pos = stop
        return text

    def array(self, dtype: np.dtype[Any]) -> NDArray[Any]:
        """TArray: int32 length then the elements (big-endian)."""
        (n,) = self.take(_I4)
        stop = self.pos + n * dtype.itemsize
        if n < 0 or stop > len(self.buf):
            msg = f"array of {n} elements at byte {self.pos} overruns the object"
            raise Unsupported(msg)
        out = np.frombuffer(self.buf, dtype, n, self.pos) if n else np.empty(0, dtype)
        self.pos = stop
        return out

    def named(self) -> str:
        """TNamed (version 1); returns fTitle."""
        stop = self.begin(1, "TNamed")
        self.tobject()
        self.string()
        title = self.string()
        self.end(stop, "TNamed")
        return title

    def tlist(self) -> tuple[int, int]:
        """TList header (version 5) read in place; returns (fSize, end); items not read."""
        stop = self.begin(5, "TList")
        self.tobject()
        self.string()
        (size,) = self.take(_I4)
        return int(size), stop

    def pointer(self, classname: str) -> int | None:
        """Start an object behind a pointer; its end, or None if the pointer is null.

        Raises Unsupported for another class, a reference to an earlier object, or
        an object without byte count.
        """
        start = self.pos
        (count,) = self.take(_U4)
        if count == 0:
            return None
        if not count & _BYTE_COUNT or count == _NEW_CLASS:
            msg = f"{classname} pointer without byte count ({count:#x})"
            raise Unsupported(msg)
        tag_at = self.pos + self.keylen + _MAP_OFFSET
        (tag,) = self.take(_U4)
        if tag == _NEW_CLASS:
            zero = self.buf.index(b"\0", self.pos)
            found: str | None = self.buf[self.pos : zero].decode(errors="surrogateescape")
            self.pos = zero + 1
            self.classes[tag_at] = found or ""
        elif tag & _CLASS_TAG:
            found = self.classes.get(tag & ~_CLASS_TAG)
        else:
            msg = f"{classname} pointer refers to an earlier object (tag {tag:#x})"
            raise Unsupported(msg)
        if found != classname:
            msg = f"pointer to a {found}, expected a {classname}"
            raise Unsupported(msg)
        return start + 4 + (count & ~_BYTE_COUNT)

    def labels(self, nbins: int) -> tuple[str, ...] | None:
        """TAxis.fLabels: a THashList of TObjString, each with its bin in fUniqueID."""
        stop = self.pointer("THashList")
        if stop is None:
            return None
        texts: list[str] = []
        bins: list[int] = []
        size, list_stop = self.tlist()
        for _ in range(size):  # one per label, as ROOT stores them
            item = self.pointer("TObjString")
            if item is None:
                msg = "null entry in an axis label list"
                raise Unsupported(msg)
            item_stop = self.begin(1, "TObjString")
            bins.append(self.tobject())
            texts.append(self.string())
            self.end(item_stop, "TObjString")
            self.end(item, "TObjString pointer")
            self.string()  # the list entry's option
        self.end(list_stop, "TList")
        self.end(stop, "THashList")
        return place_labels(texts, bins, nbins)

    def axis(self) -> _Axis:
        """TAxis (version 10) with TAttAxis (version 4); fModLabs must be null."""
        stop = self.begin(10, "TAxis")
        title = self.named()
        self.skip(4, _ATT_AXIS, "TAttAxis")
        nbins, xmin, xmax = self.take(_AXIS_RANGE)
        xbins = self.array(_F8)
        self.pos += _AXIS_FLAGS.size
        self.string()  # fTimeFormat
        labels = self.labels(nbins)
        if self.take(_U4) != (0,):
            msg = "axis with modified labels (fModLabs)"
            raise Unsupported(msg)
        self.end(stop, "TAxis")
        if nbins < 1:
            msg = f"axis with {nbins} bins"
            raise Unsupported(msg)
        if len(xbins) == nbins + 1:
            edges = xbins.astype(np.float64)
        else:
            edges = np.linspace(xmin, xmax, nbins + 1)
        return _Axis(int(nbins), edges, title, labels)


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
    r = _Reader(buf, keylen)
    try:
        stop = r.begin(spec.version, classname)
        stop_th2 = r.begin(5, "TH2") if spec.two_d else 0
        stop_th1 = r.begin(8, "TH1")
        title = r.named()
        r.skip(2, _ATT_LINE, "TAttLine")
        r.skip(2, _ATT_FILL, "TAttFill")
        r.skip(2, _ATT_MARKER, "TAttMarker")
        (ncells,) = r.take(_I4)
        axes = (r.axis(), r.axis(), r.axis())
        entries = r.take(_TH1_STATS)[2]
        r.array(_F8)  # fContour
        sumw2 = r.array(_F8)
        r.string()  # fOption
        size, list_stop = r.tlist()
        if size != 0:
            msg = "histogram with functions (fFunctions)"
            raise Unsupported(msg)
        r.end(list_stop, "fFunctions")
        if r.take(_I4) != (0,):
            msg = "buffered histogram (fBufferSize > 0)"
            raise Unsupported(msg)
        r.pos += 1 + _TH1_TAIL.size  # fBuffer's is-array byte; error option; overflows
        r.end(stop_th1, "TH1")
        if spec.two_d:
            r.pos += _TH2_STATS.size
            r.end(stop_th2, "TH2")
        contents = r.array(spec.dtype)
        r.end(stop, classname)
    except (struct.error, ValueError, IndexError) as err:
        raise Unsupported(str(err)) from err
    if r.pos != len(buf):
        msg = f"{len(buf) - r.pos} bytes after the {classname}"
        raise Unsupported(msg)
    return _histdata(spec, contents, sumw2, int(ncells), axes, title, entries, path, run)


def _histdata(
    spec: _Spec,
    contents: NDArray[Any],
    sumw2: NDArray[Any],
    ncells: int,
    axes: tuple[_Axis, _Axis, _Axis],
    title: str,
    entries: float,
    path: str,
    run: int,
) -> HistData:
    """Arrays as uproot's TH1/TH2 behaviours give them (flow bins cut, 2D as [x, y])."""
    ndim = 2 if spec.two_d else 1
    shape = (axes[1].nbins + 2, axes[0].nbins + 2) if spec.two_d else (axes[0].nbins + 2,)
    if not ncells == len(contents) == int(np.prod(shape)):
        msg = f"{len(contents)} cells stored, fNcells={ncells}, axes give {shape}"
        raise Unsupported(msg)
    full = contents.astype(np.float64).reshape(shape).T
    # uproot: variances from fSumw2 when it has one entry per cell, else the contents;
    # only positive ones are kept.
    w2 = sumw2.astype(np.float64).reshape(shape).T if len(sumw2) == ncells else full
    variances = np.where(w2 > 0, w2, 0.0)
    inner = (slice(1, -1),) * ndim
    return HistData(
        path=path,
        run=run,
        values=np.ascontiguousarray(full[inner]),
        variances=np.ascontiguousarray(variances[inner]),
        edges=tuple(ax.edges for ax in axes[:ndim]),
        title=title,
        kind=HistKind.TH2 if spec.two_d else HistKind.TH1,
        entries=float(entries),
        bin_entries=None,
        labels=tuple(ax.labels for ax in axes[:ndim]),
        axis_titles=(axes[0].title, axes[1].title),
    )


def read_key(key: Any, path: str, run: int) -> HistData:
    """Decode the TH1x/TH2x behind an uproot ``ReadOnlyKey`` (public key API only).

    Uses ``key.fClassName``, ``key.fKeylen`` and ``key.get_uncompressed_chunk_cursor()``
    (uproot's own decompression), then :func:`decode`.

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
