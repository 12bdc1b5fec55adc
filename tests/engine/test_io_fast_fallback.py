"""Tests of engine.io's fast decoder on unexpected bytes: it falls back, never reads wrong numbers.

Objects are written uncompressed with uproot so that their bytes can be patched in
place; uproot's full read (``open_dqm(path, fast=False)``) is the reference.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot
from uproot.writing.identify import to_TAxis, to_TH1x, to_TList, to_TObjString

from engine.errors import FileFormatError
from engine.io import open_dqm
from engine.io._fast import Unsupported, decode
from engine.io.write import _root_object
from engine.types import HistData, HistKind

NEW_TOBJSTRING = b"\xff\xff\xff\xffTObjString\x00"


def labelled(kind: HistKind = HistKind.TH1) -> HistData:
    if kind == HistKind.TH2:
        values = np.arange(6.0).reshape(3, 2)
        edges: tuple[np.ndarray, ...] = (np.arange(4.0), np.array([0.0, 1.0, 5.0]))
        labels: tuple[tuple[str, ...] | None, ...] = (("A", "", "C"), ("y1", "y2"))
    else:
        values, edges, labels = np.array([1.0, 2.0, 3.0]), (np.arange(4.0),), (("A", "B", ""),)
    return HistData("h", 1, values, values + 0.5, edges, "title", kind, 9.0, None, labels, ("x",))


def write_raw(path: Path, objects: dict[str, Any]) -> Path:
    """Uncompressed file (objects' bytes appear verbatim) with uproot's writer."""
    with uproot.recreate(path, compression=None) as f:
        for name, obj in objects.items():
            f[name] = obj
    return path


def span(path: Path, full_path: str) -> tuple[int, int, int]:
    """(object start in the file, object length, key start) of an uncompressed key."""
    directory, _, name = full_path.rpartition("/")
    with uproot.open(path) as f:
        key = f[directory].key(name)
        assert not key.is_compressed
        return key.fSeekKey + key.fKeylen, key.fObjlen, key.fSeekKey


def outcome(path: Path, full_path: str, *, fast: bool) -> tuple[HistData | str, int]:
    """The histogram (or the FileFormatError text) and the number of fallbacks."""
    with open_dqm(path, fast=fast) as f:
        try:
            return f.read(full_path), f.fallbacks
        except FileFormatError as err:
            return str(err), f.fallbacks


def same(a: HistData | str, b: HistData | str) -> bool:
    if isinstance(a, str) or isinstance(b, str):  # errors: both fail (texts hold addresses)
        return isinstance(a, str) and isinstance(b, str)
    if len(a.edges) != len(b.edges):
        return False
    arrays = [(a.values, b.values), (a.variances, b.variances), *zip(a.edges, b.edges, strict=True)]
    fields = ("path", "run", "title", "kind", "labels", "axis_titles", "bin_entries")
    return (
        all(getattr(a, n) == getattr(b, n) for n in fields)
        and (a.entries == b.entries or (np.isnan(a.entries) and np.isnan(b.entries)))
        and all(x is not None and y is not None and x.tobytes() == y.tobytes() for x, y in arrays)
    )


@pytest.fixture
def th1_bytes(tmp_path: Path) -> tuple[bytes, int]:
    """The uncompressed bytes of a labelled TH1F and its key length."""
    path = write_raw(tmp_path / "one.root", {"d/h": _root_object(labelled(), "h", np.float32)})
    start, length, seek = span(path, "d/h")
    return path.read_bytes()[start : start + length], start - seek


def patch(buf: bytes, at: int, fmt: str, value: int) -> bytes:
    return buf[:at] + struct.pack(fmt, value) + buf[at + struct.calcsize(fmt) :]


def test_unmutated_bytes_decode(th1_bytes: tuple[bytes, int]) -> None:
    buf, keylen = th1_bytes
    h = decode(buf, "TH1F", keylen, "h", 1)
    np.testing.assert_array_equal(h.values, [1.0, 2.0, 3.0])
    assert h.labels == (("A", "B", ""),)


@pytest.mark.parametrize(
    ("mutation", "classname"),
    [
        (lambda b: b[:-1], "TH1F"),  # truncated
        (lambda b: b + b"\0", "TH1F"),  # trailing byte
        (lambda b: patch(b, 4, ">H", 2), "TH1F"),  # TH1F class version
        (lambda b: patch(b, 10, ">H", 7), "TH1F"),  # TH1 class version
        (lambda b: patch(b, 0, ">I", struct.unpack(">I", b[:4])[0] + 1), "TH1F"),  # byte count
        (lambda b: patch(b, len(b) - 24, ">i", 4), "TH1F"),  # cell count before contents
        (lambda b: patch(b, len(b) - 24, ">i", 6), "TH1F"),
        (lambda b: patch(b, 24, ">I", 0x10), "TH1F"),  # TNamed's TObject: kIsReferenced
        (lambda b: b.replace(b"THashList", b"THashLisT"), "TH1F"),  # another label class
        (lambda b: b, "TH1D"),  # the key's class does not match the bytes
        (lambda b: b, "TH2F"),
        (lambda b: b, "TProfile"),
    ],
)
def test_mutated_bytes_are_unsupported(
    th1_bytes: tuple[bytes, int], mutation: Any, classname: str
) -> None:
    buf, keylen = th1_bytes
    assert struct.unpack(">i", buf[-24:-20]) == (5,)  # the offsets above are right
    with pytest.raises(Unsupported):
        decode(mutation(buf), classname, keylen, "h", 1)


def test_fast_path_falls_back_to_uproot(tmp_path: Path) -> None:
    """Objects uproot reads but the fast decoder refuses: the full read's answer."""
    modlabs = to_TH1x(
        "h", "t", np.array([0.0, 1.0, 2.0, 3.0, 0.0], np.float32), 6.0, 6.0, 6.0, 0.0, 0.0,
        np.array([0.0, 1.0, 2.0, 3.0, 0.0]),
        to_TAxis("xaxis", "", 3, 0.0, 3.0, fModLabs=to_TList([to_TObjString("m")])),
    )  # fmt: skip
    h = _root_object(labelled(), "h", np.float32)
    path = write_raw(tmp_path / "fb.root", {"d/h": h, "d/modlabs": modlabs})
    start, _, _ = span(path, "d/h")
    raw = bytearray(path.read_bytes())
    assert struct.unpack(">i", raw[start + 72 : start + 76]) == (5,)  # TH1 fNcells of "h"
    raw[start + 72 : start + 76] = struct.pack(">i", 7)  # uproot ignores it but for fSumw2
    path.write_bytes(bytes(raw))
    for name in ("d/h", "d/modlabs"):
        fast, fallbacks = outcome(path, name, fast=True)
        full, _ = outcome(path, name, fast=False)
        assert fallbacks == 1
        assert isinstance(fast, HistData)
        assert same(fast, full)


def test_root_style_class_references_in_labels(tmp_path: Path) -> None:
    """ROOT writes the second TObjString label as a reference to the first one's class.

    uproot's writer spells the class out each time, so the test rewrites the second
    label ROOT's way (the 11 bytes saved go into that label's text, keeping the size).
    """
    path = write_raw(tmp_path / "ref.root", {"d/h": _root_object(labelled(), "h", np.float32)})
    start, length, seek = span(path, "d/h")
    raw = path.read_bytes()
    first = raw.index(NEW_TOBJSTRING, start, start + length)
    second = raw.index(NEW_TOBJSTRING, first + 1, start + length)
    j = second + len(NEW_TOBJSTRING)  # the TObjString: byte count, version, TObject, text
    (count,) = struct.unpack(">I", raw[j : j + 4])
    n = raw[j + 16]
    text = raw[j + 17 : j + 17 + n] + b"-1234567890"
    assert len(text) == n + len(NEW_TOBJSTRING) - 4
    tag = 0x80000000 | (first - seek + 2)  # kClassMask | (offset from the key + kMapOffset)
    new = struct.pack(">II", tag, count + 11) + raw[j + 4 : j + 16] + bytes([len(text)]) + text
    patched = raw[:second] + new + raw[j + 17 + n :]
    assert len(patched) == len(raw)
    path.write_bytes(patched)
    fast, fallbacks = outcome(path, "d/h", fast=True)
    full, _ = outcome(path, "d/h", fast=False)
    assert fallbacks == 0
    assert isinstance(full, HistData)
    assert full.labels == (("A", "B-1234567890", ""),)  # uproot agrees the patch is valid
    assert same(fast, full)


@pytest.mark.parametrize("kind", [HistKind.TH1, HistKind.TH2])
def test_byte_corruptions_decode_as_uproot_reads_them(tmp_path: Path, kind: HistKind) -> None:
    """Flip each byte of an object: whenever the decoder answers, uproot answers the same.

    When the decoder refuses (Unsupported), DQMFile.read returns uproot's answer by
    construction (test_fast_path_falls_back_to_uproot), so only its answers are compared.
    """
    path = write_raw(tmp_path / "z.root", {"d/h": _root_object(labelled(kind), "h", np.float32)})
    start, length, seek = span(path, "d/h")
    raw = path.read_bytes()
    classname = "TH2F" if kind == HistKind.TH2 else "TH1F"
    decoded = 0
    for i in range(start, start + length):
        bad = raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1 :]
        try:
            fast = decode(bad[start : start + length], classname, start - seek, "d/h", 0)
        except Unsupported:
            continue
        decoded += 1
        (tmp_path / "bad.root").write_bytes(bad)
        full, fallbacks = outcome(tmp_path / "bad.root", "d/h", fast=False)
        assert fallbacks == 0
        assert same(fast, full), f"byte {i - start} of {length}"
    assert 0 < decoded < length  # both decoded and refused corruptions occurred
