"""Engine layer: the on-disk cache of downloaded DQM files, with a quota and LRU eviction.

Layout ``<dir>/<series>/<sample>/<file name>``; downloads in progress live in
``<dir>/.partial/`` and the lock file is ``<dir>/.lock``. Safe for several processes:

- a file appears under its final name only by ``os.replace`` of a complete, size-checked
  temporary file, so a reader never sees a partial file;
- "last used" is the file's mtime, set explicitly by :meth:`FileCache.get` (atime is
  unreliable on ``noatime`` mounts), so no index can get out of step with the files;
- eviction and space reservation run under an exclusive ``flock`` on the lock file;
- a reader that must not lose its file mid-read holds it with :meth:`FileCache.use`
  (a shared ``flock`` that eviction respects). Even without it, a file already opened
  stays readable after eviction: POSIX ``unlink`` keeps an open inode alive.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import stat
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from engine.errors import FetchError
from engine.sources.listing import check_name

logger = logging.getLogger(__name__)

#: A cache key: ``(series, sample, file name)``, each a plain name.
Key = tuple[str, str, str]
PARTIAL = ".partial"
LOCK = ".lock"


def _try_lock(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _touch(p: Path) -> None:
    # Explicit fine-grained time: the kernel's "now" for utime is tick-coarse.
    now = time.time_ns()
    os.utime(p, ns=(now, now))


class FileCache:
    """A directory of downloaded files kept under ``quota_bytes``.

    Args:
        directory: Cache directory (created when first written).
        quota_bytes: Most bytes the complete and in-progress files may take together.
    """

    def __init__(self, directory: str | os.PathLike[str], quota_bytes: int) -> None:
        if quota_bytes <= 0:
            msg = f"file cache quota must be positive, got {quota_bytes!r} bytes"
            raise ValueError(msg)
        self.directory = Path(directory)
        self.quota_bytes = int(quota_bytes)

    def path(self, key: Key) -> Path:
        """Where ``key`` lives (whether or not it is there); unsafe names are a FetchError."""
        for part in key:
            check_name(part, str(self.directory))
        return self.directory.joinpath(*key)

    def get(self, key: Key) -> Path | None:
        """The complete file of ``key``, marked as just used, or None if not cached."""
        p = self.path(key)
        try:
            _touch(p)
        except FileNotFoundError:
            return None
        return p

    @contextlib.contextmanager
    def use(self, key: Key) -> Iterator[Path | None]:
        """Like :meth:`get`, and the file is not evicted until the block ends."""
        fd = -1
        for _ in range(3):  # the path may be replaced between open() and flock()
            p = self.get(key)
            if p is None:
                break
            try:
                fd = os.open(p, os.O_RDONLY)
            except FileNotFoundError:  # evicted between get() and open()
                continue
            fcntl.flock(fd, fcntl.LOCK_SH)
            with contextlib.suppress(FileNotFoundError):
                if p.stat().st_ino == os.fstat(fd).st_ino:
                    break
            os.close(fd)
            fd = -1
        if fd < 0:
            yield None
            return
        try:
            yield p
        finally:
            os.close(fd)

    def entries(self) -> list[tuple[Path, int, int]]:
        """Complete cached files as ``(path, size, last use in ns)``, least recently used first."""
        out: list[tuple[Path, int, int]] = []
        if not self.directory.is_dir():
            return out
        for series in self.directory.iterdir():
            if series.name.startswith(".") or not series.is_dir():
                continue
            for p in series.glob("*/*"):
                with contextlib.suppress(FileNotFoundError):
                    st = p.stat()
                    if stat.S_ISREG(st.st_mode):
                        out.append((p, st.st_size, st.st_mtime_ns))
        return sorted(out, key=lambda e: (e[2], str(e[0])))

    def usage(self) -> int:
        """Bytes taken by complete files and by downloads in progress."""
        return sum(e[1] for e in self.entries()) + sum(self._reserved().values())

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        (self.directory / PARTIAL).mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _reserved(self) -> dict[Path, int]:
        """In-progress downloads (``<uuid>.<expected size>.part``) and their sizes."""
        out = {}
        part_dir = self.directory / PARTIAL
        if part_dir.is_dir():
            for p in part_dir.glob("*.part"):
                size = p.suffixes[-2].lstrip(".") if len(p.suffixes) >= 2 else ""
                out[p] = int(size) if size.isdigit() else 0
        return out

    def _drop_stale(self) -> None:
        """Remove temp files left by dead processes (their owner's flock is gone)."""
        for p in self._reserved():
            try:
                fd = os.open(p, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                if _try_lock(fd, fcntl.LOCK_EX):
                    logger.info("removing stale partial download %s", p)
                    p.unlink(missing_ok=True)
            finally:
                os.close(fd)

    def _make_room(self, needed: int, keep: Path) -> None:
        """Evict least-recently-used files (not ``keep``, not in use) until ``needed`` fits."""
        self._drop_stale()
        entries = self.entries()
        used = sum(e[1] for e in entries) + sum(self._reserved().values())
        for p, size, _ in entries:
            if used + needed <= self.quota_bytes:
                return
            if p == keep:
                continue
            try:
                fd = os.open(p, os.O_RDONLY)
            except FileNotFoundError:
                used -= size
                continue
            try:
                if not _try_lock(fd, fcntl.LOCK_EX):
                    continue  # a reader holds it through use()
                p.unlink(missing_ok=True)
                used -= size
                logger.info("evicted %s (%d bytes) to stay under the cache quota", p, size)
            finally:
                os.close(fd)
        if used + needed > self.quota_bytes:
            msg = (
                f"file cache {self.directory} is full: {used} bytes in use (by files being read "
                f"or downloaded), {needed} more needed, quota {self.quota_bytes} bytes; "
                f"raise --quota-gb or retry later"
            )
            raise FetchError(msg)

    def put_stream(
        self,
        key: Key,
        chunks: Iterable[bytes],
        expected_size: int,
        progress: Callable[[int, int], None] | None = None,
        url: str = "",
    ) -> Path:
        """Write ``chunks`` as the file of ``key``; it appears only when complete.

        Least-recently-used files are evicted first so that the new file fits the quota.
        The temporary file is removed on any failure (including an exception raised by
        ``chunks``, which propagates unchanged).

        Raises:
            FetchError: the file is larger than the quota, the cache is full of files in
                use, the bytes received differ from ``expected_size``, or the disk filled up.
        """
        dest = self.path(key)
        if expected_size > self.quota_bytes:
            msg = (
                f"{key[2]}: {expected_size} bytes do not fit the file cache quota of "
                f"{self.quota_bytes} bytes ({self.directory}); raise --quota-gb"
            )
            raise FetchError(msg, url)
        with self._locked():
            self._make_room(expected_size, keep=dest)
            tmp = self.directory / PARTIAL / f"{uuid.uuid4().hex}.{expected_size}.part"
            f = tmp.open("wb", buffering=0)  # unbuffered: close() never writes (disk full)
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # marks it as alive for _drop_stale
        try:
            self._write(f, tmp, chunks, expected_size, progress, url)
            with self._locked():
                dest.parent.mkdir(parents=True, exist_ok=True)
                if dest.is_file() and dest.stat().st_size == expected_size:
                    tmp.unlink()  # another process brought the same file first: keep its inode
                else:
                    tmp.replace(dest)
                _touch(dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            f.close()
        return dest

    @staticmethod
    def _write(
        f: IO[bytes],
        tmp: Path,
        chunks: Iterable[bytes],
        expected: int,
        progress: Callable[[int, int], None] | None,
        url: str,
    ) -> None:
        done = 0
        last = 0.0

        def write(data: bytes | None) -> None:
            # Only file-system errors here: requests' errors are OSErrors too and must
            # reach the caller unchanged (they are retried).
            try:
                if data is None:
                    os.fsync(f.fileno())
                    return
                view = memoryview(data)
                while view:
                    view = view[f.write(view) or 0 :]
            except OSError as err:
                if err.errno in (errno.ENOSPC, errno.EDQUOT):
                    msg = (
                        f"disk full while writing {tmp} ({done} of {expected} bytes of "
                        f"{url or tmp.name}); free space or lower --quota-gb"
                    )
                else:
                    msg = f"cannot write {tmp}: {err.strerror or err}"
                raise FetchError(msg, url) from err

        for chunk in chunks:
            done += len(chunk)
            if done > expected:
                break
            write(chunk)
            now = time.monotonic()
            if progress is not None and now - last >= 0.05:
                progress(done, expected)
                last = now
        write(None)
        if done != expected:
            msg = (
                f"{url or tmp.name}: listed size is {expected} bytes but "
                f"{'more' if done > expected else done} bytes arrived; nothing was kept, try again"
            )
            raise FetchError(msg, url)
        if progress is not None:
            progress(done, expected)
