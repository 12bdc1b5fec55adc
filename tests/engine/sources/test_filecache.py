"""FileCache: quota, least-recently-used eviction, atomic appearance, several processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import FetchError
from engine.filecache import FileCache

REPO = Path(__file__).resolve().parents[3]


def leftovers(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.is_file() and p.name != ".lock")


def put(cache: FileCache, name: str, size: int, fill: bytes = b"x") -> Path:
    data = (fill * size)[:size]
    chunks = [data[i : i + 4096] for i in range(0, size, 4096)]
    return cache.put_stream(("Run2022", "SingleMuon", name), chunks, size)


def test_put_get_round_trip(tmp_path: Path) -> None:
    cache = FileCache(tmp_path, 10_000)
    key = ("Run2022", "SingleMuon", "a.root")
    assert cache.get(key) is None
    seen: list[tuple[int, int]] = []
    p = cache.put_stream(key, [b"abc", b"def"], 6, lambda d, t: seen.append((d, t)))
    assert p == tmp_path / "Run2022" / "SingleMuon" / "a.root"
    assert p.read_bytes() == b"abcdef"
    assert seen[-1] == (6, 6)
    assert cache.get(key) == p
    assert cache.usage() == 6
    assert leftovers(tmp_path) == [p]


def test_lru_eviction_keeps_recently_used(tmp_path: Path) -> None:
    cache = FileCache(tmp_path, 300)
    a, b, c = (put(cache, n, 100) for n in ("a", "b", "c"))
    assert cache.get(("Run2022", "SingleMuon", "a")) == a  # a is now the most recent
    d = put(cache, "d", 100)
    assert sorted(p.name for p, _, _ in cache.entries()) == ["a", "c", "d"]
    assert not b.exists()
    assert a.exists()
    assert c.exists()
    assert d.exists()
    e = put(cache, "e", 250)  # needs room for 250: evicts c, a, d in LRU order
    assert [p.name for p, _, _ in cache.entries()] == ["e"]
    assert e.stat().st_size == 250
    assert cache.usage() <= 300


def test_file_larger_than_quota(tmp_path: Path) -> None:
    cache = FileCache(tmp_path, 100)
    put(cache, "small", 50)
    with pytest.raises(FetchError, match=r"big: 101 bytes do not fit the file cache quota of 100"):
        put(cache, "big", 101)
    assert [p.name for p in leftovers(tmp_path)] == ["small"]


def test_file_in_use_is_not_evicted(tmp_path: Path) -> None:
    cache = FileCache(tmp_path, 200)
    put(cache, "a", 100)
    put(cache, "b", 100)
    with cache.use(("Run2022", "SingleMuon", "a")) as pa, cache.use(("Run2022", "SingleMuon", "b")):
        assert pa is not None
        with pytest.raises(FetchError, match=r"file cache .* is full: 200 bytes in use"):
            put(cache, "c", 100)
        assert pa.read_bytes() == b"x" * 100
    put(cache, "c", 100)  # once released, the least recently used one goes
    assert sorted(p.name for p in leftovers(tmp_path)) == ["b", "c"]


def test_open_file_survives_eviction(tmp_path: Path) -> None:
    cache = FileCache(tmp_path, 100)
    a = put(cache, "a", 100, b"A")
    with a.open("rb") as f:
        put(cache, "b", 100, b"B")
        assert not a.exists()
        assert f.read() == b"A" * 100


@pytest.mark.parametrize(("sent", "match"), [(99, "but 99 bytes arrived"), (101, "but more")])
def test_size_mismatch_leaves_nothing(tmp_path: Path, sent: int, match: str) -> None:
    cache = FileCache(tmp_path, 1000)
    old = put(cache, "a", 100, b"o")
    with pytest.raises(FetchError, match=f"listed size is 100 bytes {match}"):
        cache.put_stream(("Run2022", "SingleMuon", "a"), [b"n" * sent], 100)
    assert old.read_bytes() == b"o" * 100  # the complete old file is untouched
    assert leftovers(tmp_path) == [old]


def test_error_in_the_stream_propagates_and_cleans_up(tmp_path: Path) -> None:
    cache = FileCache(tmp_path, 1000)

    def chunks() -> Iterator[bytes]:
        yield b"x" * 10
        raise ConnectionResetError("peer went away")

    with pytest.raises(ConnectionResetError, match="peer went away"):
        cache.put_stream(("S", "P", "f"), chunks(), 100)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("bad", ["..", "../x", "a/b", ".hidden", "", "a\x00b"])
def test_path_traversal_keys_are_refused(tmp_path: Path, bad: str) -> None:
    cache = FileCache(tmp_path, 1000)
    with pytest.raises(FetchError, match="refusing unsafe name"):
        cache.put_stream(("Run2022", "SingleMuon", bad), [b"x"], 1)
    with pytest.raises(FetchError, match="refusing unsafe name"):
        cache.get((bad, "SingleMuon", "f.root"))
    assert leftovers(tmp_path) == []


def _python(code: str, *args: str, **kw: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-c", textwrap.dedent(code), *args], env=env, **kw
    )


def test_partial_file_of_a_killed_process_is_cleaned(tmp_path: Path) -> None:
    proc = _python(
        """
        import sys, time
        from engine.filecache import FileCache
        def chunks():
            yield b"x" * 500
            time.sleep(60)
        FileCache(sys.argv[1], 1000).put_stream(("S", "P", "f"), chunks(), 900)
        """,
        str(tmp_path),
    )
    try:
        deadline = time.monotonic() + 20
        while not list((tmp_path / ".partial").glob("*.part")):
            assert time.monotonic() < deadline, "the writer never started"
            time.sleep(0.02)
        cache = FileCache(tmp_path, 1000)
        assert cache.usage() == 900  # reserved by the download in progress
        with pytest.raises(FetchError, match="is full"):
            put(cache, "g", 200)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    put(cache, "g", 200)  # the dead writer's partial file is gone, its reservation too
    assert [p.name for p in leftovers(tmp_path)] == ["g"]


WORKER = """
import hashlib, sys, time
from engine.errors import FetchError
from engine.filecache import FileCache
cache = FileCache(sys.argv[1], 5 * 50_000)
role, seconds = sys.argv[2], float(sys.argv[3])
def content(i):
    return hashlib.sha256(str(i).encode()).digest() * (50_000 // 32) + b"e" * (50_000 % 32)
end = time.monotonic() + seconds
n = bad = 0
while time.monotonic() < end:
    i = n % 9
    key = ("S", "P", f"f{i}.root")
    n += 1
    if role == "writer":
        data = content(i)
        try:
            cache.put_stream(key, [data[j:j + 8192] for j in range(0, len(data), 8192)], len(data))
        except FetchError as err:
            assert "is full" in str(err), err  # every other file pinned by readers
    else:
        with cache.use(key) as p:
            if p is not None and p.read_bytes() != content(i):
                bad += 1
print(n, bad)
"""


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    procs = [
        _python(WORKER, str(tmp_path), role, "1.5", stdout=subprocess.PIPE)
        for role in ("writer", "writer", "reader", "reader")
    ]
    outs = [p.communicate(timeout=60)[0].decode().split() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    reads = [int(o[0]) for o in outs[2:]]
    assert all(r > 10 for r in reads)
    assert [int(o[1]) for o in outs] == [0, 0, 0, 0]  # no reader ever saw a partial file
    cache = FileCache(tmp_path, 5 * 50_000)
    assert cache.usage() <= cache.quota_bytes
    assert all(p.suffix == ".root" for p in leftovers(tmp_path))


def test_disk_full_leaves_nothing(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("needs root to mount a 64 kB tmpfs (a real full disk)")
    try:
        cache = FileCache(mnt, 10**9)
        kept = put(cache, "kept", 1000)
        with pytest.raises(FetchError, match="disk full while writing"):
            put(cache, "huge", 200_000)
        assert leftovers(mnt) == [kept]
        assert kept.read_bytes() == b"x" * 1000
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
