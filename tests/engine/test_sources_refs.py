"""The local directory source; certification and references are tested in their own files."""

from __future__ import annotations

import json

import pytest

from engine.errors import DQMError
from engine.sources import LocalSource


def test_local_source_prefers_promptreco(tmp_path) -> None:
    base = tmp_path / "OfflineData" / "Run2022" / "SingleMuon" / "0003571xx"
    base.mkdir(parents=True)
    for proc in ("Run2022C-PromptReco-v1", "Run2022C-10Dec2022-v1"):
        (base / f"DQM_V0001_R000357130__SingleMuon__{proc}__DQMIO.root").write_bytes(b"x")
    (base / "DQM_V0001_R000357131__SingleMuon__Run2022C-10Dec2022-v1__DQMIO.root").write_bytes(b"y")
    (base / "notes.txt").write_text("not a DQM file")
    runs = LocalSource(tmp_path).runs("Run2022", "SingleMuon")
    assert sorted(runs) == [357130, 357131]
    assert runs[357130].processing == "Run2022C-PromptReco-v1"
    assert runs[357131].processing == "Run2022C-10Dec2022-v1"
    assert len(LocalSource(tmp_path).files("Run2022", "SingleMuon")) == 3
    with pytest.raises(DQMError, match="no dataset Run2022/ZeroBias"):
        LocalSource(tmp_path).runs("Run2022", "ZeroBias")
    json.dumps([r.run for r in runs.values()])
