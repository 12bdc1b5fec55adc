"""Engine layer: CLI sub-commands, one module each with ``add_parser`` and ``run``."""

from __future__ import annotations
