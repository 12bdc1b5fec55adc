"""Engine layer: bounds- and byte-count-checked reads of ROOT's streamed object format.

The primitives :mod:`engine.io._fast` builds its TH1x/TH2x decoder from. Every
unexpected byte raises :class:`Unsupported` (struct and numpy raise on overruns).
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
from numpy.typing import NDArray

BYTE_COUNT = 0x40000000  # kByteCountMask: a byte count precedes the version
_CLASS_TAG = 0x80000000  # kClassMask: a tag naming a class, not an object
_NEW_CLASS = 0xFFFFFFFF  # kNewClassTag: the class name follows, NUL-terminated
_MAP_OFFSET = 2  # kMapOffset: class tags count from the key start plus 2
_IS_REFERENCED = 1 << 4  # TObject kIsReferenced: 2 bytes of process id would follow

I4 = struct.Struct(">i")
U4 = struct.Struct(">I")
_HEADER = struct.Struct(">IH")  # byte count | mask, version
_HEAD_TOBJECT = struct.Struct(">IHhII")  # header; TObject version, fUniqueID, fBits


class Unsupported(Exception):
    """The bytes are not in a layout this decoder reads; use uproot instead."""


class RootBuffer:
    """A position in one object's uncompressed bytes (``keylen``: its key's fKeylen)."""

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
        count, found = _HEADER.unpack_from(self.buf, self.pos)
        if not count & BYTE_COUNT or found != version:
            msg = f"{what} version {found} (byte count {count:#x}), expected {version}"
            raise Unsupported(msg)
        self.pos += 6
        return self.pos - 2 + int(count & ~BYTE_COUNT)

    def end(self, stop: int, what: str) -> None:
        if self.pos != stop:
            msg = f"{what} ends at byte {self.pos}, its byte count says {stop}"
            raise Unsupported(msg)

    def head(self, version: int, what: str) -> tuple[int, int]:
        """Byte count, version and TObject (version 1) in one read; returns (end, fUniqueID)."""
        count, found, tversion, unique_id, bits = _HEAD_TOBJECT.unpack_from(self.buf, self.pos)
        if not count & BYTE_COUNT or found != version or tversion != 1 or bits & _IS_REFERENCED:
            msg = f"{what} header {count:#x} v{found}, TObject v{tversion} bits {bits:#x}"
            raise Unsupported(msg)
        self.pos += _HEAD_TOBJECT.size
        return self.pos - _HEAD_TOBJECT.size + 4 + (count & ~BYTE_COUNT), int(unique_id)

    def string(self) -> str:
        """TString: 1-byte length (255: a 4-byte length follows), then UTF-8 bytes."""
        buf, pos = self.buf, self.pos
        n = buf[pos]
        pos += 1
        if n == 255:
            (n,) = I4.unpack_from(buf, pos)
            pos += 4
        stop = pos + n
        if n < 0 or stop > len(buf):
            msg = f"string of {n} bytes at byte {pos} overruns the object"
            raise Unsupported(msg)
        self.pos = stop
        return buf[pos:stop].decode(errors="surrogateescape")

    def array(self, dtype: np.dtype[Any]) -> NDArray[Any]:
        """TArray: int32 length then the elements (big-endian)."""
        (n,) = I4.unpack_from(self.buf, self.pos)
        start = self.pos + 4
        self.pos = start + n * dtype.itemsize
        if n < 0 or self.pos > len(self.buf):
            msg = f"array of {n} elements at byte {start} overruns the object"
            raise Unsupported(msg)
        return np.frombuffer(self.buf, dtype, n, start) if n else np.empty(0, dtype)

    def named(self) -> str:
        """TNamed (version 1); returns fTitle."""
        stop, _ = self.head(1, "TNamed")
        self.string()  # fName
        title = self.string()
        self.end(stop, "TNamed")
        return title

    def tlist(self) -> tuple[int, int]:
        """TList header (version 5) read in place; returns (fSize, end); items not read."""
        stop, _ = self.head(5, "TList")
        self.string()  # fName
        (size,) = self.take(I4)
        return int(size), stop

    def skip_list(self, what: str) -> None:
        """A TList read in place whose items are skipped by their byte counts.

        Safe only after the last pointer this decoder resolves: class tags inside the
        skipped items are not recorded.
        """
        size, stop = self.tlist()
        for _ in range(size):
            (count,) = self.take(U4)
            if count & BYTE_COUNT and count != _NEW_CLASS:
                self.pos += int(count & ~BYTE_COUNT)
            elif count != 0:
                msg = f"{what} item without byte count ({count:#x})"
                raise Unsupported(msg)
            self.string()  # the list entry's option
        self.end(stop, what)

    def pointer(self, classname: str) -> int | None:
        """Start an object behind a pointer; its end, or None if the pointer is null.

        Raises Unsupported for another class, a reference to an earlier object, or
        an object without byte count.
        """
        start = self.pos
        (count,) = self.take(U4)
        if count == 0:
            return None
        if not count & BYTE_COUNT or count == _NEW_CLASS:
            msg = f"{classname} pointer without byte count ({count:#x})"
            raise Unsupported(msg)
        tag_at = self.pos + self.keylen + _MAP_OFFSET
        (tag,) = self.take(U4)
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
        return start + 4 + int(count & ~BYTE_COUNT)

    def labels(self) -> tuple[list[str], list[int]] | None:
        """TAxis.fLabels: a THashList of TObjString; (texts, fUniqueIDs) or None if null.

        ROOT keeps each label's 1-based bin number in its fUniqueID.
        """
        stop = self.pointer("THashList")
        if stop is None:
            return None
        texts: list[str] = []
        bins: list[int] = []
        size, list_stop = self.tlist()
        for _ in range(size):  # one per stored label
            item_stop = self.pointer("TObjString")
            if item_stop is None:
                msg = "null entry in an axis label list"
                raise Unsupported(msg)
            string_stop, unique_id = self.head(1, "TObjString")
            bins.append(unique_id)
            texts.append(self.string())
            self.end(string_stop, "TObjString")
            self.end(item_stop, "TObjString pointer")
            self.string()  # the list entry's option
        self.end(list_stop, "TList")
        self.end(stop, "THashList")
        return texts, bins
