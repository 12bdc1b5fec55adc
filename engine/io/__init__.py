"""Engine layer: DQM ROOT file I/O, the only package that imports uproot.

Read with :func:`open_dqm` (a :class:`DQMFile`), write with :func:`write_dqm`.
"""

from __future__ import annotations

from engine.io._convert import HISTOGRAM_CLASSES
from engine.io._names import run_from_filename
from engine.io.read import DQMFile, open_dqm
from engine.io.write import write_dqm

__all__ = ["HISTOGRAM_CLASSES", "DQMFile", "open_dqm", "run_from_filename", "write_dqm"]
