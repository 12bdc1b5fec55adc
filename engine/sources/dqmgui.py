"""Engine layer: the DQM GUI file server (cmsweb ``…/dqm/offline/data/browse/ROOT/``) as a Source.

Offline datasets are ``(series, sample)`` as on the server; the Online layout is exposed as
series ``"online"`` with the subsystem as sample (``files("online", "CSC")``). Listings are
cached in memory for ``listing_ttl`` seconds; files are downloaded into a :class:`FileCache`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import requests

from engine.errors import FetchError
from engine.filecache import FileCache
from engine.sources.base import Progress, RunFile, processing_rank
from engine.sources.client import HTTPSClient
from engine.sources.listing import (
    HUNDREDS_DIR,
    ONLINE_SERIES,
    TENTHOUSANDS_DIR,
    ListingRow,
    check_name,
    parse_file_name,
    parse_listing,
    pick_runs,
)

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://cmsweb.cern.ch/dqm/offline/data/browse/ROOT/"
CHUNK = 1 << 16


class DQMGUISource:
    """Runs listed by a DQM GUI file server, downloaded over HTTPS into a file cache.

    Args:
        base_url: The ``…/browse/ROOT/`` URL.
        cert: X509 client certificate (PEM); may also hold the key.
        key: Client key (PEM).
        ca: CA bundle signing the server (the CERN CA bundle); None: system bundle.
        cache: Where downloaded files are kept.
        timeout: ``(connect, read)`` seconds per request.
        retries: Extra attempts after timeouts, connection errors, cut transfers and 5xx.
        backoff: First retry delay (s), doubled on each retry.
        listing_ttl: Seconds a directory listing is reused without asking the server.
        session: A ``requests.Session`` to share.
        now: Clock for the listing cache (tests pass a fake one).
        sleep: Sleep between retries.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        ca: str | Path | None = None,
        cache: FileCache,
        timeout: tuple[float, float] = (5.0, 60.0),
        retries: int = 3,
        backoff: float = 0.5,
        listing_ttl: float = 300.0,
        session: requests.Session | None = None,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if urlsplit(base_url).scheme not in ("https", "http"):
            msg = f"--source-url {base_url!r}: expected an https:// URL of the DQM GUI file server"
            raise FetchError(msg, base_url)
        self.base_url = base_url.rstrip("/") + "/"
        self.client = HTTPSClient(
            cert=cert,
            key=key,
            ca=ca,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            session=session,
            sleep=sleep,
        )
        self.cache = cache
        self.listing_ttl = listing_ttl
        self._now = now
        self._listings: dict[str, tuple[float, list[ListingRow]]] = {}

    # ------------------------------------------------------------------ listings
    def listing(self, rel: str) -> list[ListingRow]:
        """Rows of the directory ``rel`` (below the base URL), cached for ``listing_ttl``."""
        url = self.base_url + quote(rel.strip("/")) + "/" if rel.strip("/") else self.base_url
        hit = self._listings.get(url)
        if hit is not None and self._now() - hit[0] < self.listing_ttl:
            return hit[1]
        rows = parse_listing(self.client.get_text(url))
        self._listings[url] = (self._now(), rows)
        logger.debug("listed %s: %d rows", url, len(rows))
        return rows

    def forget_listings(self) -> None:
        """Drop every cached listing (the next call asks the server)."""
        self._listings.clear()

    def _subdirs(self, rel: str, pattern: re.Pattern[str]) -> list[str]:
        return sorted(r.name for r in self.listing(rel) if r.is_dir and pattern.fullmatch(r.name))

    def _dataset_dirs(self, series: str, sample: str) -> list[str]:
        """Relative paths of the directories that hold the dataset's files."""
        check_name(series, "--series")
        check_name(sample, "--sample")
        if series == ONLINE_SERIES:
            top = "OnlineData/original"
            return [
                f"{top}/{d}/{h}"
                for d in self._subdirs(top, TENTHOUSANDS_DIR)
                for h in self._subdirs(f"{top}/{d}", HUNDREDS_DIR)
            ]
        base = f"OfflineData/{series}/{sample}"
        try:
            return [f"{base}/{h}" for h in self._subdirs(base, HUNDREDS_DIR)]
        except FetchError as err:
            if err.status == 404:
                msg = f"no dataset {series}/{sample} on {self.base_url} (HTTP 404 for {err.url})"
                raise FetchError(msg, err.url, 404) from err
            raise

    # ------------------------------------------------------------------ Source protocol
    def files(self, series: str, sample: str) -> list[RunFile]:
        """Every DQM file of a dataset, sorted by run, preferred processing first."""
        out = []
        for rel in self._dataset_dirs(series, sample):
            dir_url = self.base_url + quote(rel) + "/"
            for row in self.listing(rel):
                if row.is_dir:
                    continue
                check_name(row.name, dir_url)
                parsed = parse_file_name(row.name, series, sample)
                if parsed is None:
                    continue
                run, processing = parsed
                subsystem = sample if series == ONLINE_SERIES else None
                url = dir_url + quote(row.name)
                assert row.size is not None
                out.append(
                    RunFile(
                        run, series, sample, processing, row.size, None, url, row.date, subsystem
                    )
                )
        return sorted(out, key=lambda f: (f.run, processing_rank(f.processing)))

    def runs(self, series: str, sample: str, processing: str | None = None) -> dict[int, RunFile]:
        """The chosen file of each run: ``processing`` if given, else PromptReco if present."""
        return pick_runs(self.files(series, sample), processing)

    def fetch(self, rf: RunFile, progress: Progress | None = None) -> Path:
        """The file in the local cache, downloaded first if needed (resumable: no; atomic: yes).

        Raises:
            FetchError: HTTP/TLS failure, a size different from the listed one, a transfer
                cut short, a full disk or cache; nothing partial is ever left behind.
        """
        if rf.url is None:
            msg = f"run {rf.run}: {rf.path} has no URL; fetch it with a LocalSource"
            raise FetchError(msg)
        url = rf.url
        name = check_name(unquote(urlsplit(url).path.rsplit("/", 1)[-1]), url)
        key = (rf.series, rf.sample, name)
        cached = self.cache.get(key)
        if cached is not None and cached.stat().st_size == rf.size:
            if progress is not None:
                progress(rf.size, rf.size)
            return cached

        def consume(resp: requests.Response) -> Path:
            length = resp.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) != rf.size:
                self.forget_listings()
                msg = (
                    f"{url}: listed size is {rf.size} bytes but the server sends {length}; "
                    "the file changed on the server or the listing is stale, try again"
                )
                raise FetchError(msg, url)
            return self.cache.put_stream(key, resp.iter_content(CHUNK), rf.size, progress, url=url)

        logger.info("downloading run %d: %s (%d bytes)", rf.run, url, rf.size)
        return self.client.request(url, consume, stream=True)
