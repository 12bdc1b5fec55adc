"""Engine layer: read DQM ROOT files into :class:`~engine.types.HistData` (uproot inside).

Only ``engine.io`` imports uproot. Every uproot or OS failure leaves here as a one-line
:class:`~engine.errors.FileFormatError` or :class:`~engine.errors.HistogramNotFound`.
"""

from __future__ import annotations

import difflib
import fnmatch
import logging
import os
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import uproot

from engine.errors import FileFormatError, HistogramNotFound
from engine.io._convert import HISTOGRAM_CLASSES, to_histdata
from engine.io._fast import FAST_CLASSES, read_key
from engine.io._names import parse_scalar, run_from_dirname
from engine.types import HistData

logger = logging.getLogger(__name__)

_DIR_CLASSES = frozenset({"TDirectory", "TDirectoryFile"})
#: Local files are memory-mapped: ~10% faster per histogram than uproot's fsspec default.
_HANDLER = uproot.source.file.MemmapSource


def _one_line(err: BaseException) -> str:
    """uproot messages span many lines; a log line or CLI error must not."""
    text = " ".join(str(err).split())
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _norm(directory: str) -> str:
    """'/A//B/' -> 'A/B' (directory names never contain '/')."""
    return "/".join(p for p in directory.split("/") if p)


def open_dqm(path: str | os.PathLike[str], *, fast: bool = True) -> DQMFile:
    """Open a DQM ROOT file for reading.

    Args:
        path: Local path of the file.
        fast: Decode TH1x/TH2x with :mod:`engine.io._fast` (about five times faster),
            falling back to uproot's full read for anything it does not know. False
            always uses uproot (the reference the fast path is tested against).

    Returns:
        An open :class:`DQMFile` (use it as a context manager or call ``close()``).

    Raises:
        FileFormatError: The file is missing, a directory, empty, not a ROOT file, or
            truncated; the one-line message names the file and the fix.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if p.is_dir():
            msg = f"{p}: is a directory, expected a DQM ROOT file (give the path of a .root file)"
            raise FileFormatError(msg)
        with p.open("rb") as fh:
            magic = fh.read(4)
    except FileNotFoundError as err:
        msg = f"{p}: no such file; expected a DQM ROOT file (check the path or download it)"
        raise FileFormatError(msg) from err
    except OSError as err:
        msg = f"{p}: cannot be read ({_one_line(err)})"
        raise FileFormatError(msg) from err
    if size == 0:
        msg = f"{p}: empty file (0 bytes), expected a ROOT file; the download probably failed"
        raise FileFormatError(msg)
    if magic != b"root":
        msg = (
            f"{p}: not a ROOT file (starts with {magic!r}, expected b'root'); "
            "is it an HTML error page or a text file saved under a .root name?"
        )
        raise FileFormatError(msg)
    try:
        root = uproot.open(p, object_cache=None, array_cache=None, handler=_HANDLER)
    except Exception as err:  # file boundary: uproot raises many types on bad bytes
        msg = f"{p}: not a readable ROOT file ({_one_line(err)}); re-download it"
        raise FileFormatError(msg) from err
    end = int(root.file.fEND)
    if size < end:
        root.close()
        msg = f"{p}: truncated ROOT file ({size} bytes, its header says {end}); re-download it"
        raise FileFormatError(msg)
    try:
        return DQMFile(p, root, fast=fast)
    except BaseException:
        root.close()
        raise


class DQMFile:
    """An open DQM ROOT file: list directories, expand globs, read histograms and scalars.

    Directory listings are cached per instance (never globally), so reading many
    histograms from the same directory walks the file structure once. ``fallbacks``
    counts reads the fast decoder handed over to uproot.
    """

    def __init__(self, path: Path, root: Any, *, fast: bool = True) -> None:
        self.path = path
        self._root = root
        self._fast = fast
        self.fallbacks = 0
        self._dirs: dict[str, Any] = {"": root}
        self._children: dict[str, dict[str, str]] = {}
        self._closed = False
        self.run: int | None = self._find_run()

    # -- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        """Release the file (idempotent); later queries raise ValueError."""
        self._closed = True
        self._dirs.clear()
        self._children.clear()
        self._root.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DQMFile({str(self.path)!r}, run={self.run})"

    # -- directory walking -----------------------------------------------------------
    def _find_run(self) -> int | None:
        for name, cls in self._listing("DQMData").items():
            run = run_from_dirname(name)
            if run is not None and cls in _DIR_CLASSES:
                return run
        return None

    def _dir(self, directory: str) -> Any:
        """The uproot directory at ``directory`` ('' is the top), or None if absent."""
        directory = _norm(directory)
        if self._closed:
            msg = f"{self.path}: DQMFile is closed (read inside the 'with' block)"
            raise ValueError(msg)
        if directory in self._dirs:
            return self._dirs[directory]
        parent, _, name = directory.rpartition("/")
        found = None
        if self._listing(parent).get(name) in _DIR_CLASSES:
            try:
                found = self._dirs[parent].key(name).get()
            except Exception as err:  # file boundary: corrupt directory bytes
                msg = f"{self.path}: cannot read directory {directory!r} ({_one_line(err)})"
                raise FileFormatError(msg) from err
        self._dirs[directory] = found
        return found

    def _listing(self, directory: str) -> dict[str, str]:
        """Direct children of ``directory`` as {name: classname}; empty if it is absent."""
        directory = _norm(directory)
        if directory not in self._children or self._closed:
            d = self._dir(directory)
            try:
                items = [] if d is None else d.iterclassnames(recursive=False, cycle=False)
                self._children[directory] = dict(items)
            except Exception as err:  # file boundary: corrupt key list
                msg = f"{self.path}: cannot list directory {directory!r} ({_one_line(err)})"
                raise FileFormatError(msg) from err
        return self._children[directory]

    def _missing_dir(self, directory: str) -> FileFormatError:
        parts = [p for p in directory.strip("/").split("/") if p]
        have: list[str] = []
        for part in parts:
            if self._listing("/".join(have)).get(part) not in _DIR_CLASSES:
                break
            have.append(part)
        siblings = [n for n, c in self._listing("/".join(have)).items() if c in _DIR_CLASSES]
        wanted = parts[len(have)] if len(have) < len(parts) else ""
        close = ["/".join([*have, c]) for c in difflib.get_close_matches(wanted, siblings, n=3)]
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        return FileFormatError(f"{self.path}: directory {directory!r} not found{hint}")

    def _split(self, full_path: str) -> tuple[str, str]:
        """Split an in-file path into (directory, name); names may contain '/'."""
        parent, _, last = full_path.strip("/").rpartition("/")
        if parent and self._dir(parent) is not None:  # the usual case, in one step
            return _norm(parent), last
        parts = full_path.strip("/").split("/")
        i = 0
        while i < len(parts) - 1:
            if self._listing("/".join(parts[:i])).get(parts[i]) not in _DIR_CLASSES:
                break
            i += 1
        return "/".join(parts[:i]), "/".join(parts[i:])

    def _get(self, directory: str, name: str) -> Any:
        d = self._dir(directory)
        if "/" in name or ";" in name:
            # uproot's key lookup splits on '/' and ';' (DQM scalar names contain '/').
            items = d.iteritems(recursive=False, cycle=False, filter_name=lambda n: n == name)
            return next(obj for _, obj in items)
        return d.key(name).get()

    # -- public queries --------------------------------------------------------------
    def has_dir(self, directory: str) -> bool:
        """Whether ``directory`` (e.g. ``'DQMData/Run 1/CSC/Run summary'``) exists."""
        return self._dir(directory) is not None

    def keys(self, directory: str) -> list[tuple[str, str]]:
        """Direct children of ``directory`` as sorted ``(name, ROOT classname)`` pairs.

        Raises:
            FileFormatError: ``directory`` does not exist (with close matches).
        """
        if self._dir(directory) is None:
            raise self._missing_dir(directory)
        return sorted(self._listing(directory).items())

    def expand(self, directory: str, pattern: str) -> list[str]:
        """Histogram names in ``directory`` matching ``pattern`` (sorted).

        Args:
            directory: The directory to look in.
            pattern: A name, or an fnmatch pattern with ``*`` (case-sensitive). If it
                contains ``/``, the part before the last ``/`` is a subdirectory and the
                results keep that prefix (``'Occupancy/h*'`` -> ``['Occupancy/hA']``).

        Returns:
            Matching histogram names; a pattern without ``*`` gives ``[pattern]`` if an
            object of that name exists (so that reading it reports a wrong class),
            else ``[]``. A missing directory gives ``[]``.
        """
        sub, _, last = pattern.rpartition("/")
        where = f"{directory.strip('/')}/{sub}" if sub else directory
        prefix = f"{sub}/" if sub else ""
        children = self._listing(where)
        if "*" not in last:
            return [pattern] if last in children else []
        return sorted(
            prefix + name
            for name, cls in children.items()
            if cls in HISTOGRAM_CLASSES and fnmatch.fnmatchcase(name, last)
        )

    def list_histograms(self, directory: str) -> list[str]:
        """Every histogram below ``directory``, recursively, relative to it (sorted).

        Only key listings are read, never the histograms themselves.
        """
        base = directory.strip("/")
        out: list[str] = []
        stack = [""]
        while stack:
            rel = stack.pop()
            for name, cls in self._listing(f"{base}/{rel}" if rel else base).items():
                child = f"{rel}/{name}" if rel else name
                if cls in HISTOGRAM_CLASSES:
                    out.append(child)
                elif cls in _DIR_CLASSES:
                    stack.append(child)
        return sorted(out)

    def read(self, full_path: str, *, path: str | None = None, run: int | None = None) -> HistData:
        """Read one histogram as plain arrays.

        Args:
            full_path: In-file path, e.g. ``'DQMData/Run 1/CSC/Run summary/X/hA'``.
            path: ``HistData.path`` to use (default: ``full_path``).
            run: ``HistData.run`` to use (default: the file's run, or 0 if unknown).

        Returns:
            The histogram; for profiles ``values`` are means, ``variances`` squared
            errors on the means and ``bin_entries`` the effective entries per bin.

        Raises:
            HistogramNotFound: No object at ``full_path`` (with close matches).
            FileFormatError: The object is not a supported histogram, or is corrupt.
        """
        directory, name = self._split(full_path)
        children = self._listing(directory)
        classname = children.get(name)
        if classname is None:
            close = difflib.get_close_matches(name, list(children), n=3)
            raise HistogramNotFound(full_path, str(self.path), close=close)
        kind = HISTOGRAM_CLASSES.get(classname)
        if kind is None:
            supported = ", ".join(sorted(HISTOGRAM_CLASSES))
            msg = (
                f"{self.path}: {full_path!r} is a {classname}, not a histogram "
                f"(expected one of {supported})"
            )
            raise FileFormatError(msg)
        if run is None:
            run = self.run if self.run is not None else 0
        path = path if path is not None else full_path
        if self._fast and classname in FAST_CLASSES and "/" not in name and ";" not in name:
            try:
                return read_key(self._dir(directory).key(name), path, run)
            except Exception as err:  # noqa: BLE001 - any doubt: uproot's full read decides
                self.fallbacks += 1
                logger.debug("%s: %r: full read (%s)", self.path, full_path, _one_line(err))
        try:
            obj = self._get(directory, name)
        except Exception as err:  # file boundary: corrupt or cut object bytes
            msg = f"{self.path}: cannot read {full_path!r} ({classname}): {_one_line(err)}"
            raise FileFormatError(msg) from err
        try:
            return to_histdata(obj, kind, path, run)
        except (ValueError, TypeError, KeyError, IndexError) as err:  # inconsistent members
            msg = f"{self.path}: cannot decode {full_path!r} ({classname}): {_one_line(err)}"
            raise FileFormatError(msg) from err

    def scalars(self, directory: str) -> dict[str, int | float | str]:
        """DQM scalar monitor elements directly in ``directory``, parsed from key names.

        Keys such as ``<iRun>i=357130</iRun>``, ``<fX>f=1.5</fX>`` and
        ``<sName>s=text</sName>`` give ``{"iRun": 357130, "fX": 1.5, "sName": "text"}``.
        A value that does not parse as its type is kept as a string; other keys are
        ignored. Missing directory: ``{}``.
        """
        parsed = (parse_scalar(key) for key in self._listing(directory))
        return dict(p for p in parsed if p is not None)
