"""Engine layer: HTTPS GETs with a client certificate, retries and one-line errors.

One ``requests.Session``; each request passes ``timeout``, ``verify`` and ``cert`` itself
(``REQUESTS_CA_BUNDLE`` would otherwise override a Session's ``verify``). Timeouts,
connection errors, cut-short transfers and 5xx are retried with exponential backoff;
4xx and TLS failures are not.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import requests

from engine.errors import ConfigError, FetchError

logger = logging.getLogger(__name__)
T = TypeVar("T")

_CERT_REJECTED = (
    "alert unknown ca",
    "alert bad certificate",
    "alert certificate unknown",
    "alert decrypt error",
    "alert access denied",
    "alert handshake failure",
    "alert certificate required",
    "alert certificate expired",
)
_ERRNO = re.compile(r"\[Errno -?\d+\] [^'\"()]+")
_SSL_REASON = re.compile(r"SSL\w*Error\((?:\d+, )?'([^']+)'")


def _chain_text(err: BaseException) -> str:
    """Every message in the exception chain, on one line."""
    parts = []
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts.append(f"{type(cur).__name__}: {cur}")
        for arg in getattr(cur, "args", ()):
            if isinstance(arg, BaseException):
                parts.append(f"{type(arg).__name__}: {arg}")
        cur = cur.__cause__ or cur.__context__
    return " ".join(" | ".join(parts).split())


class HTTPSClient:
    """GETs over HTTPS with an X509 client certificate.

    Args:
        cert: Client certificate (PEM); may hold the key too.
        key: Client key (PEM), if not inside ``cert``.
        ca: CA bundle that signs the server (the CERN CA); None uses the system bundle.
        timeout: ``(connect, read)`` seconds of each request.
        retries: Extra attempts after a timeout, connection error or 5xx.
        backoff: First retry delay in seconds; it doubles with each retry.
        session: A ``requests.Session`` to use (one is made otherwise).
        sleep: The sleep function (tests may pass a fast one).
    """

    def __init__(
        self,
        *,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        ca: str | Path | None = None,
        timeout: tuple[float, float] = (5.0, 60.0),
        retries: int = 3,
        backoff: float = 0.5,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        for flag, value in (("--cert", cert), ("--key", key), ("--ca", ca)):
            if value is not None and not Path(value).is_file():
                msg = f"{flag} {str(value)!r}: no such file"
                raise ConfigError(msg)
        if key is not None and cert is None:
            msg = "--key given without --cert: pass the client certificate too"
            raise ConfigError(msg)
        self.cert = None if cert is None else str(cert)
        self.key = None if key is None else str(key)
        self.ca = None if ca is None else str(ca)
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.session = session if session is not None else requests.Session()
        self._sleep = sleep

    def _cert_arg(self) -> str | tuple[str, str] | None:
        if self.cert is None:
            return None
        return self.cert if self.key is None else (self.cert, self.key)

    def request(self, url: str, consume: Callable[[requests.Response], T], stream: bool) -> T:
        """GET ``url`` and return ``consume(response)``, retrying transient failures.

        A ``requests`` error raised inside ``consume`` (a transfer cut short) is retried
        like one raised by the request; a FetchError from ``consume`` is not.

        Raises:
            FetchError: one line saying what failed, where, and what to do.
        """
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                with self.session.get(
                    url,
                    timeout=self.timeout,
                    verify=self.ca if self.ca is not None else True,
                    cert=self._cert_arg(),
                    stream=stream,
                ) as resp:
                    resp.raise_for_status()
                    return consume(resp)
            except requests.RequestException as err:
                fe, transient = self.describe(err, url, attempt)
                if not transient or attempt == attempts:
                    raise fe from err
                delay = self.backoff * 2 ** (attempt - 1)
                logger.warning("%s; retry %d/%d in %.2f s", fe, attempt, self.retries, delay)
                self._sleep(delay)
        msg = f"{url}: no attempt made (retries={self.retries})"  # unreachable: attempts >= 1
        raise FetchError(msg, url)

    def get_text(self, url: str) -> str:
        """The body of ``url`` as text (listings, golden JSON)."""
        return self.request(url, lambda r: r.text, stream=False)

    def describe(
        self, err: requests.RequestException, url: str, attempts: int
    ) -> tuple[FetchError, bool]:
        """A one-line FetchError for ``err`` and whether it is worth retrying."""
        host = urlsplit(url).netloc
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        resp = err.response if isinstance(err, requests.HTTPError) else None
        if resp is not None:
            s = resp.status_code
            if s in (401, 403):
                hint = "check --cert/--key, the certificate must be registered with the DQM GUI"
                return FetchError(f"HTTP {s} from {url}: access denied; {hint}", url, s), False
            if s == 404:
                msg = f"HTTP 404 from {url}: no such run/file on the server"
                return FetchError(msg, url, s), False
            if s >= 500:
                msg = f"HTTP {s} from {url}: server error{tries}; try again later"
                return FetchError(msg, url, s), True
            return FetchError(f"HTTP {s} from {url}: {resp.reason}", url, s), False
        text = _chain_text(err)
        low = text.lower()
        if "certificate verify failed" in low:
            ca = f" (the --ca {self.ca!r} does not sign it)" if self.ca else ""
            msg = (
                f"{host}: certificate verify failed — the server certificate is not signed by a "
                f"known CA{ca}; pass --ca with the CERN CA bundle"
            )
            return FetchError(msg, url), False
        rejected = next((a for a in _CERT_REJECTED if a in low), None)
        if rejected or isinstance(err, requests.exceptions.SSLError):
            if self.cert is None:
                msg = f"{host}: the server requires a client certificate; pass --cert and --key"
            else:
                found = _SSL_REASON.findall(text)
                reason = rejected or (found[-1] if found else "TLS handshake failed")
                msg = (
                    f"{host}: the server rejected the client certificate {self.cert!r} "
                    f"({reason}); check --cert/--key: the certificate must be signed by a CA "
                    f"the server trusts and be registered with the DQM GUI"
                )
            return FetchError(msg, url), False
        if isinstance(err, requests.Timeout) or "timed out" in low:
            c, r = self.timeout
            msg = (
                f"{url}: timed out{tries} (connect {c:g} s, read {r:g} s per attempt); the "
                f"server is slow or unreachable, try again later"
            )
            return FetchError(msg, url), True
        if isinstance(err, requests.exceptions.ChunkedEncodingError) or "incompleteread" in low:
            msg = f"{url}: transfer cut short by the server{tries}; nothing was kept, try again"
            return FetchError(msg, url), True
        if isinstance(err, requests.ConnectionError):
            found = _ERRNO.findall(text)
            why = found[-1].strip() if found else type(err).__name__
            msg = f"{url}: cannot connect{tries}: {why}; check the URL and the network"
            return FetchError(msg, url), True
        return FetchError(f"{url}: {text[:300]}", url), False
