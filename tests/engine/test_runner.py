"""compare_files: parallel chunks give exactly the serial results, from any caller."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from engine.config import load_subsystem
from engine.registry import build_registry
from engine.runner import compare_files

ROOT = Path(__file__).resolve().parents[2]


def _files(tmp_path: Path, root_file, make_hist, n: int = 400) -> tuple[Path, list[Path], Path]:
    rng = np.random.default_rng(5)
    shape = np.linspace(50, 150, 30)
    paths = []
    for run in (11, 12, 13):
        g = f"DQMData/Run {run}/Sub/Run summary/"
        hists = {}
        for i in range(n):
            broken = run == 13 and i % 50 == 0  # the data run has 8 histograms half dead
            v = rng.poisson(shape * np.where(broken & (np.arange(30) < 15), 0.0, 1.0)).astype(float)
            hists[g + f"d/h{i:03d}"] = make_hist(v, run, path=f"d/h{i:03d}")
        paths.append(root_file(hists, name=f"DQM_V0001_R{run:09d}__S__P__DQMIO.root"))
    cfg = tmp_path / "Sub.json"
    cfg.write_text(
        json.dumps(
            {
                "main_gdir": "DQMData/Run {0}/Sub/Run summary/",
                "comparators": ["beta_binomial", "ks_test"],
                "hists": [{"path": "d/h*"}],
            }
        )
    )
    return paths[2], paths[:2], cfg


def test_parallel_equals_serial(tmp_path, root_file, make_hist) -> None:
    data, refs, cfg = _files(tmp_path, root_file, make_hist)
    reg = build_registry()
    sub = load_subsystem(cfg, reg)
    serial = compare_files(sub, reg, data, refs, workers=1)
    parallel = compare_files(sub, reg, data, refs, workers=2)
    assert len(serial.results) == 2000  # 400 x (2 configured + 3 deciding, 2 references)
    assert serial.to_dict() == parallel.to_dict()
    flagged = {r.path for r in serial.results if r.verdict_status == "flagged"}
    assert flagged == {f"d/h{i:03d}" for i in range(0, 400, 50)}


def test_works_from_a_script_without_main_guard(tmp_path, root_file, make_hist) -> None:
    data, refs, cfg = _files(tmp_path, root_file, make_hist)
    script = tmp_path / "analysis.py"
    script.write_text(
        textwrap.dedent(f"""
        from engine.config import load_subsystem
        from engine.registry import build_registry
        from engine.runner import compare_files
        reg = build_registry()
        sub = load_subsystem({str(cfg)!r}, reg)
        rep = compare_files(sub, reg, {str(data)!r}, {[str(r) for r in refs]!r}, workers=2)
        print(len(rep.results), rep.count("flagged"))
    """)
    )
    out = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    # 8 half-dead histograms flagged by variation_scan and moments, 7 of them by the rate
    # of history_pca too (its shape needs 4 runs; ks_test skips < 10,000 entries;
    # beta_binomial does not decide)
    assert out.stdout.split() == ["2000", "23"]


def test_stored_contents_are_not_decoded_again(tmp_path, root_file, make_hist, caplog) -> None:
    import logging
    import os

    from engine.history import FileContents
    from engine.store import open_store

    data, refs, cfg = _files(tmp_path, root_file, make_hist, n=40)
    reg = build_registry()
    sub = load_subsystem(cfg, reg)
    plain = compare_files(sub, reg, data, refs, workers=1)
    caplog.set_level(logging.INFO, logger="engine.runner")
    with open_store(tmp_path / "store") as store:
        contents = FileContents(store)
        cold = compare_files(sub, reg, data, refs, workers=1, contents=contents)
        assert "(3 of 3 files decoded)" in caplog.text
        caplog.clear()
        warm = compare_files(sub, reg, refs[0], [refs[1], data], workers=1, contents=contents)
        assert "(0 of 3 files decoded)" in caplog.text
        assert cold.to_dict() == plain.to_dict()
        again = compare_files(sub, reg, data, refs, workers=1, contents=contents)
        assert again.to_dict() == plain.to_dict()  # float32 storage keeps every verdict
        assert len(warm.results) == len(plain.results)
        # a file that changes on disk is decoded again, and its old contents dropped
        caplog.clear()
        st = data.stat()
        os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        compare_files(sub, reg, data, refs, workers=1, contents=contents)
        assert "(1 of 3 files decoded)" in caplog.text
        keys = [k for k in store._cache.iterkeys() if k[0] == "file_contents"]
        assert len(keys) == 3


def test_a_broken_store_only_costs_decoding(tmp_path, root_file, make_hist, caplog) -> None:
    from engine.history import FileContents
    from engine.store import open_store

    data, refs, cfg = _files(tmp_path, root_file, make_hist, n=40)
    reg = build_registry()
    sub = load_subsystem(cfg, reg)
    store = open_store(tmp_path / "store")
    contents = FileContents(store)
    (tmp_path / "store" / "cache.db").unlink()
    (tmp_path / "store" / "cache.db").mkdir()  # the database is now a directory
    store.close()
    res = compare_files(sub, reg, data, refs, workers=1, contents=contents)
    assert res.to_dict() == compare_files(sub, reg, data, refs, workers=1).to_dict()
    assert caplog.text.count("decoded-contents cache unavailable") == 1
