"""Engine layer: the store's queryable state in indexed SQLite tables (``state.sqlite3`` in
the store directory, beside diskcache's blobs).

Jobs live here: one row per (run, subsystem), indexed by state, so that writing a job or
listing the queued ones costs the same with 100 jobs or 100,000 (a single diskcache value
holding every job's state had to be rewritten on each change). The database runs in WAL
mode, so readers never wait for the writer and several processes may write; a claim is one
conditional update (:meth:`JobTable.replace`), which either wins or reports that another
process changed the job first.

Schema version 1 (table ``meta``). When a store still holds jobs in the diskcache layout
of earlier versions, they are moved here on first open, in one transaction.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.store_records import JobState

VERSION = 1
FILE_NAME = "state.sqlite3"
COLUMNS = ("run", "subsystem", "dataset", "state", "attempts", "next_try", "error", "updated")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    (
        "CREATE TABLE IF NOT EXISTS jobs (run INTEGER NOT NULL, subsystem TEXT NOT NULL, "
        "dataset TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL, "
        "next_try TEXT NOT NULL, error TEXT NOT NULL, updated TEXT NOT NULL, "
        "PRIMARY KEY (run, subsystem)) WITHOUT ROWID"
    ),
    "CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, run, subsystem)",
)


def _row(job: JobState) -> tuple[Any, ...]:
    return (int(job.run), job.subsystem, job.dataset, job.state, int(job.attempts),
            job.next_try, job.error, job.updated)  # fmt: skip


def _job(row: tuple[Any, ...]) -> JobState:
    return JobState(**dict(zip(COLUMNS, row, strict=True)))


class JobTable:
    """The jobs of one store directory. One SQLite connection per thread and process
    (opened when first used; a forked child opens its own)."""

    def __init__(self, directory: Path, legacy: Callable[[], list[JobState]]) -> None:
        """``legacy`` returns the jobs of the old layout (moved here once, when the table
        is new) and removes them from there."""
        self.path = directory / FILE_NAME
        self._local = threading.local()
        self._all: list[tuple[int, sqlite3.Connection]] = []
        self._lock = threading.Lock()
        with self._write() as db:
            for statement in _SCHEMA:
                db.execute(statement)
            got = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
            if got is None:
                db.executemany(f"INSERT OR REPLACE INTO jobs VALUES ({', '.join('?' * 8)})",
                               [_row(j) for j in legacy()])  # fmt: skip
                db.execute("INSERT INTO meta VALUES ('version', ?)", (str(VERSION),))
            elif int(got[0]) > VERSION:
                msg = (f"{self.path}: schema version {got[0]} is newer than this autodqm "
                       f"knows ({VERSION}); upgrade autodqm")  # fmt: skip
                raise sqlite3.DatabaseError(msg)

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "pid", None) != os.getpid():
            # each thread uses only its own connection; any thread may close them all
            db = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db, self._local.pid = db, os.getpid()
            with self._lock:
                self._all.append((os.getpid(), db))
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction that takes the write lock at once (no upgrade deadlocks)."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for pid, db in self._all:
                if pid == os.getpid():  # a forked child leaves its parent's alone
                    db.close()
            self._all.clear()
        self._local = threading.local()

    def get(self, run: int, subsystem: str) -> JobState | None:
        row = (
            self._db()
            .execute(
                f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE run = ? AND subsystem = ?",
                (int(run), subsystem),
            )
            .fetchone()
        )
        return None if row is None else _job(row)

    def put(self, job: JobState) -> None:
        with self._write() as db:
            db.execute(f"INSERT OR REPLACE INTO jobs VALUES ({', '.join('?' * 8)})", _row(job))

    def replace(self, job: JobState, expect: JobState | None) -> bool:
        """Write ``job`` only if the stored one is still ``expect`` (None: absent), in one
        conditional statement; False when another writer changed it first."""
        with self._write() as db:
            if expect is None:
                cur = db.execute(
                    f"INSERT OR IGNORE INTO jobs VALUES ({', '.join('?' * 8)})", _row(job)
                )
            else:
                sets = ", ".join(f"{c} = ?" for c in COLUMNS[2:])
                same = " AND ".join(f"{c} = ?" for c in COLUMNS[2:])
                cur = db.execute(
                    f"UPDATE jobs SET {sets} WHERE run = ? AND subsystem = ? AND {same}",
                    (*_row(job)[2:], int(job.run), job.subsystem, *_row(expect)[2:]),
                )
            return cur.rowcount == 1

    def select(self, states: Iterable[str] | None = None) -> list[JobState]:
        """Jobs in any of ``states`` (all when None), ordered by run then subsystem."""
        cols = ", ".join(COLUMNS)
        if states is None:
            rows = self._db().execute(f"SELECT {cols} FROM jobs ORDER BY run, subsystem")
        else:
            where, wanted = _in_states(states)
            rows = self._db().execute(
                f"SELECT {cols} FROM jobs WHERE {where} ORDER BY run, subsystem", wanted
            )
        return [_job(r) for r in rows.fetchall()]

    def count(self, states: Iterable[str]) -> int:
        where, wanted = _in_states(states)
        got = self._db().execute(f"SELECT COUNT(*) FROM jobs WHERE {where}", wanted)
        return int(got.fetchone()[0])


def _in_states(states: Iterable[str]) -> tuple[str, list[str]]:
    """``state IN (?, ...)`` and its parameters."""
    wanted = sorted(set(states))
    return f"state IN ({', '.join('?' * len(wanted))})", wanted
