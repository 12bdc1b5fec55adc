"""A results store filled by really running the service on generated demo data (shared by
the drill-down, grid and browser tests through the ``demo_site`` fixture in conftest)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.demo import DemoOptions, generate, load_runs
from engine.registry import build_registry
from engine.service import Service
from engine.service_config import ServiceConfig, load_service_config
from engine.settings import ROOT
from engine.store import Store, open_store

SUBSYSTEMS = ("CSC", "EMTF")


@dataclass
class DemoSite:
    """Demo files, the service config over them and the store the service filled."""

    root: Path
    demo: Path
    config_path: Path
    config: ServiceConfig
    store: Store
    certified: list[int]


def build(root: Path) -> DemoSite:
    """Generate 6 demo runs (seed 2), poll and process every certified run (CSC, EMTF)."""
    demo = root / "demo"
    generate(demo, DemoOptions(runs=6, seed=2))
    subs = ", ".join(f'"{s}"' for s in SUBSYSTEMS)
    cfg = root / "autodqm.toml"
    cfg.write_text(
        f"""
[storage]
cache_dir = "store"
data_dir = "files"
[source]
kind = "local"
path = "{demo}"
[certification]
kind = "golden_json"
path = "{demo / "golden.json"}"
[[watch]]
series = "Run2022"
sample = "SingleMuon"
subsystems = [{subs}]
config_dir = "{ROOT / "config" / "subsystems"}"
[scheduler]
workers = 2
"""
    )
    registry = build_registry()
    config = load_service_config(cfg, registry)
    store = open_store(config.storage.cache_dir)
    service = Service(config, store, registry)
    service.poll("golden_json")
    service.drain()
    certified = sorted(r.run for r in load_runs(demo) if r.certified)
    return DemoSite(root, demo, cfg, config, store, certified)
