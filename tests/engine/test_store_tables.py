"""The jobs table: indexed rows in SQLite, conditional claims, the move from diskcache."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import diskcache
import pytest

from engine.store import open_store
from engine.store_ops import SCHEMA
from engine.store_records import JobState, StoreError
from engine.store_tables import FILE_NAME


def _job(run: int, sub: str = "CSC", state: str = "queued", attempts: int = 0) -> JobState:
    return JobState(run, sub, "/SingleMuon/Run2022C", state, attempts, "", "", "2026-01-01")


def test_jobs_are_rows_listed_by_state(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        for run in (3, 1, 2):
            store.put_job(_job(run))
        store.put_job(_job(2, state="done"))
        store.put_job(_job(1, "DT", state="failed", attempts=2))
        assert [(j.run, j.subsystem) for j in store.jobs()] == [
            (1, "CSC"), (1, "DT"), (2, "CSC"), (3, "CSC")]  # fmt: skip
        assert [j.run for j in store.jobs(("queued",))] == [1, 3]
        assert store.count_jobs(("queued", "failed")) == 3
        assert store.get_job(1, "DT") == _job(1, "DT", state="failed", attempts=2)
        assert store.get_job(9, "CSC") is None
    with open_store(tmp_path) as again:  # kept on disk
        assert len(again.jobs()) == 4


def test_a_claim_is_won_once(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        queued = _job(5)
        assert store.replace_job(queued, expect=None)
        assert not store.replace_job(queued, expect=None)  # exists already
        fetching = _job(5, state="fetching")
        assert store.replace_job(fetching, expect=queued)
        assert not store.replace_job(_job(5, state="fetching", attempts=1), expect=queued)
        assert store.get_job(5, "CSC") == fetching


def _claim_all(directory: str, n: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    won = []
    with open_store(directory) as store:
        for run in range(n):
            job = store.get_job(run, "CSC")
            if job is not None and job.state == "queued":
                taken = _job(run, state="fetching")
                if store.replace_job(taken, expect=job):
                    won.append(run)
    out.put(won)


def test_two_processes_never_claim_the_same_job(tmp_path: Path) -> None:
    n = 300
    with open_store(tmp_path) as store:
        for run in range(n):
            store.put_job(_job(run))
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(str(tmp_path), n, out)) for _ in range(2)]
    for p in procs:
        p.start()
    won = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert sorted(won[0] + won[1]) == list(range(n))  # every job once, none twice


def test_jobs_of_the_diskcache_layout_move_to_the_table(tmp_path: Path) -> None:
    with diskcache.Cache(str(tmp_path)) as old:  # what earlier versions wrote
        old.set(("job", SCHEMA, 7, "CSC"), _job(7).to_dict())
        old.set(("job", SCHEMA, 8, "DT"), _job(8, "DT", state="done").to_dict())
        old.set(("jobs", SCHEMA), {"7/CSC": "queued", "8/DT": "done"})
    with open_store(tmp_path) as store:
        assert store.jobs() == [_job(7), _job(8, "DT", state="done")]
    with diskcache.Cache(str(tmp_path)) as left:
        assert ("jobs", SCHEMA) not in left
        assert ("job", SCHEMA, 7, "CSC") not in left
    with open_store(tmp_path) as store:  # a second open moves nothing twice
        assert len(store.jobs()) == 2


def test_a_newer_schema_or_a_broken_table_is_a_one_line_error(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'version'")
    with pytest.raises(StoreError, match="schema version 99 is newer") as err:
        open_store(tmp_path)
    assert "\n" not in str(err.value)
    other = tmp_path / "other"
    other.mkdir()
    (other / FILE_NAME).write_text("not a database " * 100)
    with pytest.raises(StoreError, match=r"results store .*other: cannot open"):
        open_store(other)
