"""Engine layer: a small client of the CMS Run Registry API, and a certification source on it.

Datasets come from ``POST <api>/datasets_filtered_ordered`` with a JSON body
``{"page", "page_size", "sortings", "filter"}``; the answer is
``{"datasets": [...], "pages": N, "count": M}`` (pages counted from 0), newest run first.
Plain ``requests``; the official ``runregistry`` package (extra ``autodqm[runregistry]``)
is only used, when installed, to get a CERN SSO token.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import requests

from engine.certification import CertState, CertUpdate, LumiRanges, as_state, diff_state
from engine.errors import ConfigError, FetchError

logger = logging.getLogger(__name__)

DEFAULT_URL = "https://cmsrunregistry.web.cern.ch/api"
#: Datasets per page (what the official client asks for).
PAGE_SIZE = 50
#: Offline dataset states of a workspace.
DATASET_STATES = ("OPEN", "SIGNOFF", "COMPLETED")
#: Pages read at most in one query (50,000 datasets): a guard against a server that
#: keeps announcing more pages.
MAX_PAGES = 1000

Token = str | Callable[[], str] | None


def dataset_filter(
    *,
    min_run: int = 0,
    dataset_class: str | None = None,
    name_like: str | None = None,
    states: Sequence[str] = ("COMPLETED",),
    workspace: str = "global",
) -> dict[str, Any]:
    """The Run Registry filter for datasets above ``min_run`` in one of ``states``.

    Args:
        min_run: Only runs with a larger number (the watermark).
        dataset_class: Run class, e.g. ``"Collisions22"`` (``rr_attributes.class``).
        name_like: Dataset name pattern with ``%`` wildcards, e.g. ``"/PromptReco/%/DQM"``.
        states: Allowed states of the workspace (OPEN, SIGNOFF, COMPLETED).
        workspace: ``global`` or a subsystem workspace (``csc``, ``dt`` ...): the state
            looked at is ``dataset_attributes.<workspace>_state``.

    Raises:
        ConfigError: an unknown state or an empty workspace name.
    """
    bad = [s for s in states if s not in DATASET_STATES]
    if bad or not states:
        allowed = ", ".join(DATASET_STATES)
        msg = f"Run Registry states: expected some of {allowed}, found {list(states)!r}"
        raise ConfigError(msg)
    if not workspace.isidentifier():
        msg = f"Run Registry workspace: expected a name like 'global' or 'csc', found {workspace!r}"
        raise ConfigError(msg)
    rules: list[dict[str, Any]] = [{"run_number": {">": min_run}}]
    if dataset_class:
        rules.append({"rr_attributes.class": {"=": dataset_class}})
    if name_like:
        op = "like" if "%" in name_like else "="
        rules.append({"name": {op: name_like}})
    rules.append({f"dataset_attributes.{workspace}_state": {"or": [{"=": s} for s in states]}})
    return {"and": rules}


class RunRegistryClient:
    """Datasets from the Run Registry API over HTTPS.

    Args:
        url: API root (production: :data:`DEFAULT_URL`).
        token: A bearer token, or a function returning a fresh one (see :func:`sso_token`).
        cert: Client certificate (path, or ``(cert, key)``) where the API accepts one.
        verify: CA bundle path or bool, passed with each request.
        timeout: ``(connect, read)`` seconds.
        page_size: Datasets per page.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: Token = None,
        cert: str | tuple[str, str] | None = None,
        verify: bool | str = True,
        timeout: tuple[float, float] = (5.0, 60.0),
        page_size: int = PAGE_SIZE,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._cert = cert
        self._verify = verify
        self._timeout = timeout
        self.page_size = page_size
        self._session = session or requests.Session()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._session.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        token = self._token() if callable(self._token) else self._token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a JSON body to ``<url>/<path>``; the decoded JSON object.

        Raises:
            FetchError: connection failure, HTTP error, an answer that is not a JSON
                object, or an ``{"err": ...}`` answer (one line, naming the URL).
        """
        url = f"{self.url}/{path.lstrip('/')}"
        try:
            resp = self._session.post(
                url,
                data=json.dumps(body),
                headers=self._headers(),
                timeout=self._timeout,
                verify=self._verify,
                cert=self._cert,
            )
            resp.raise_for_status()
        except requests.HTTPError as err:
            r = err.response
            status = r.status_code if r is not None else None
            detail = " ".join((r.text if r is not None else "").split())[:200]
            msg = f"{url}: HTTP {status} from the Run Registry" + (f": {detail}" if detail else "")
            raise FetchError(msg, url, status) from err
        except requests.RequestException as err:
            detail = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
            msg = f"{url}: cannot reach the Run Registry ({detail})"
            raise FetchError(msg, url) from err
        try:
            data = resp.json()
        except ValueError as err:
            msg = f"{url}: expected a JSON answer, found {resp.text[:80]!r}"
            raise FetchError(msg, url, resp.status_code) from err
        if not isinstance(data, dict):
            msg = f"{url}: expected a JSON object, found {type(data).__name__}"
            raise FetchError(msg, url, resp.status_code)
        if "err" in data:
            detail = " ".join(str(data["err"]).split())[:200]
            msg = f"{url}: the Run Registry answered an error: {detail}"
            raise FetchError(msg, url, resp.status_code)
        return data

    def datasets(self, filter_: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every dataset matching a Run Registry filter (all pages), as the API gives them.

        Raises:
            FetchError: see :meth:`post`; also a page without a ``datasets`` list.
        """
        out: list[dict[str, Any]] = []
        page, pages = 0, 1
        while page < min(pages, MAX_PAGES):
            body = {"page": page, "page_size": self.page_size, "sortings": [], "filter": filter_}
            data = self.post("datasets_filtered_ordered", body)
            rows = data.get("datasets")
            if not isinstance(rows, list):
                found = type(rows).__name__
                msg = f"{self.url}: page {page}: expected a 'datasets' list, found {found}"
                raise FetchError(msg, self.url)
            out.extend(r for r in rows if isinstance(r, dict))
            pages = int(data.get("pages") or 0)
            page += 1
        return out


def run_class(dataset: Mapping[str, Any]) -> str:
    """The run class of an API dataset (nested under ``Run.rr_attributes`` or flattened)."""
    run = dataset.get("Run") or {}
    attrs = run.get("rr_attributes") if isinstance(run, Mapping) else None
    return str((attrs or dataset).get("class", ""))


def oms_attributes(dataset: Mapping[str, Any]) -> Mapping[str, Any]:
    """The OMS attributes of an API dataset (``Run.oms_attributes`` or flattened)."""
    run = dataset.get("Run") or {}
    attrs = run.get("oms_attributes") if isinstance(run, Mapping) else None
    attrs = attrs if isinstance(attrs, Mapping) else dataset.get("oms_attributes")
    return attrs if isinstance(attrs, Mapping) else {}


def _ranges(dataset: Mapping[str, Any]) -> LumiRanges:
    n = oms_attributes(dataset).get("ls_duration")
    return [(1, n)] if isinstance(n, int) and not isinstance(n, bool) and n > 0 else []


class RunRegistrySource:
    """Datasets of a class and name pattern that reached a state, above a watermark.

    The query asks only for runs above ``state.watermark``. After each poll the
    watermark moves to ``highest run seen - lookback``: a run certified late (up to
    ``lookback`` run numbers behind the newest) is still found, and the query stays
    small. Runs seen before are never reported as new again. Ranges are
    ``[(1, ls_duration)]`` from OMS when the API gives it, else empty (unknown).
    """

    def __init__(
        self,
        client: RunRegistryClient,
        dataset_class: str,
        name_like: str,
        state: CertState | Mapping[str, Any] | None = None,
        *,
        states: Sequence[str] = ("COMPLETED",),
        workspace: str = "global",
        lookback: int = 2000,
    ) -> None:
        self.client = client
        self.dataset_class = dataset_class
        self.name_like = name_like
        self.states = tuple(states)
        self.workspace = workspace
        self.lookback = lookback
        self.state = as_state(state)
        dataset_filter(states=self.states, workspace=workspace)  # bad settings fail now

    def describe(self) -> str:
        return (
            f"Run Registry {self.client.url}: {self.dataset_class} datasets {self.name_like} "
            f"in state {'/'.join(self.states)} ({self.workspace})"
        )

    def query(self, min_run: int) -> list[dict[str, Any]]:
        """The matching datasets above ``min_run``, as the API gives them."""
        flt = dataset_filter(
            min_run=min_run,
            dataset_class=self.dataset_class,
            name_like=self.name_like,
            states=self.states,
            workspace=self.workspace,
        )
        return self.client.datasets(flt)

    def poll(self, now: datetime | None = None) -> CertUpdate:
        asked = self.state.watermark
        current: dict[int, LumiRanges] = {}
        for ds in self.query(asked):
            run = ds.get("run_number")
            if isinstance(run, int) and not isinstance(run, bool) and run > asked:
                current[run] = _ranges(ds)
        top = max([*current, *self.state.seen, 0])
        watermark = max(asked, top - self.lookback)
        now = now if now is not None else datetime.now(UTC)
        update, self.state = diff_state(
            self.state, current, now, asked_above=asked, watermark=watermark
        )
        logger.info("%s: %d datasets, %d new", self.describe(), len(current), len(update.new_runs))
        return update


def sso_token(
    client_id: str,
    client_secret: str,
    target_application: str = "webframeworks-paas-cmsrunregistry",
) -> Callable[[], str]:
    """A token function for :class:`RunRegistryClient` through CERN SSO (client credentials).

    Needs the optional extra ``pip install 'autodqm[runregistry]'`` (the official client
    brings ``cernrequests``).

    Raises:
        ConfigError: the extra is not installed.
    """
    try:
        from cernrequests import get_api_token
    except ImportError as err:
        msg = (
            "Run Registry SSO token: the 'runregistry' extra is not installed; "
            "run pip install 'autodqm[runregistry]'"
        )
        raise ConfigError(msg) from err

    def token() -> str:
        value, _expires = get_api_token(
            client_id=client_id, client_secret=client_secret, target_application=target_application
        )
        return str(value)

    return token
