"""DQMGUISource against a real HTTPS server with client certificates (see conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from engine.errors import ConfigError, FetchError
from engine.filecache import FileCache
from engine.io import open_dqm
from engine.sources.dqmgui import DQMGUISource

if TYPE_CHECKING:
    from conftest import HTTPSServer

SERIES, SAMPLE = "Run2022", "SingleMuon"
OFFLINE_RUNS = [
    (357100, "Run2022C-PromptReco-v1"),
    (357101, "Run2022C-PromptReco-v1"),
    (357101, "Run2022C-10Dec2022-v1"),
    (357129, "Run2022C-10Dec2022-v1"),
    (357131, "Run2022C-PromptReco-v1"),
    (357205, "Run2022C-Express-v1"),
]


def offline_name(run: int, proc: str = "Run2022C-PromptReco-v1") -> str:
    return f"DQM_V0001_R{run:09d}__{SAMPLE}__{proc}__DQMIO.root"


FAST = {"timeout": (1.0, 0.3), "retries": 2, "backoff": 0.01}


def source(
    server: HTTPSServer, cache_dir: Path, *, cert: str = "client", ca: bool = True, **kw: object
) -> DQMGUISource:
    pki = server.pki
    certs = {
        "client": (pki.client_cert, pki.client_key),
        "combined": (pki.client_combined, None),
        "other": (pki.other_cert, pki.other_key),
        "none": (None, None),
    }[cert]
    opts = {**FAST, **kw}
    return DQMGUISource(
        server.url,
        cert=certs[0],
        key=certs[1],
        ca=pki.ca if ca else None,
        cache=FileCache(cache_dir, 10**9),
        **opts,  # type: ignore[arg-type]
    )


def leftovers(cache_dir: Path) -> list[Path]:
    """Every file in the cache except the lock file."""
    return sorted(p for p in cache_dir.rglob("*") if p.is_file() and p.name != ".lock")


def test_listing_offline(https_server: HTTPSServer, tmp_path: Path, dqm_tree: Path) -> None:
    src = source(https_server, tmp_path)
    files = src.files(SERIES, SAMPLE)
    assert [(f.run, f.processing) for f in files] == sorted(
        OFFLINE_RUNS, key=lambda rp: (rp[0], "PromptReco" not in rp[1])
    )
    f = files[0]
    local = (
        dqm_tree / "OfflineData" / SERIES / SAMPLE / "0003571xx" / offline_name(*OFFLINE_RUNS[0])
    )
    assert f.size == local.stat().st_size
    assert f.url == https_server.url + f"OfflineData/{SERIES}/{SAMPLE}/0003571xx/{local.name}"
    assert f.date.endswith("+00:00")
    assert f.path is None


def test_promptreco_preferred_and_override(https_server: HTTPSServer, tmp_path: Path) -> None:
    src = source(https_server, tmp_path)
    runs = src.runs(SERIES, SAMPLE)
    assert sorted(runs) == sorted({r for r, _ in OFFLINE_RUNS})
    assert runs[357101].processing == "Run2022C-PromptReco-v1"
    assert runs[357129].processing == "Run2022C-10Dec2022-v1"  # the only one there
    rereco = src.runs(SERIES, SAMPLE, processing="Run2022C-10Dec2022-v1")
    assert sorted(rereco) == [357101, 357129]
    assert rereco[357101].processing == "Run2022C-10Dec2022-v1"


def test_listing_online_layout(https_server: HTTPSServer, tmp_path: Path) -> None:
    src = source(https_server, tmp_path)
    runs = src.runs("online", "CSC")
    assert sorted(runs) == [357100, 357131]
    assert runs[357100].subsystem == "CSC"
    assert runs[357100].url is not None
    assert runs[357100].url.endswith(
        "OnlineData/original/00035xxxx/0003571xx/DQM_V0001_CSC_R000357100.root"
    )
    assert sorted(src.runs("online", "EMTF")) == [357100]
    path = src.fetch(runs[357131])
    assert path == tmp_path / "online" / "CSC" / "DQM_V0001_CSC_R000357131.root"


def test_download_is_a_complete_root_file(https_server: HTTPSServer, tmp_path: Path) -> None:
    src = source(https_server, tmp_path)
    rf = src.runs(SERIES, SAMPLE)[357131]
    seen: list[tuple[int, int]] = []
    path = src.fetch(rf, progress=lambda done, total: seen.append((done, total)))
    assert path == tmp_path / SERIES / SAMPLE / offline_name(357131, "Run2022C-PromptReco-v1")
    assert path.stat().st_size == rf.size
    assert seen[-1] == (rf.size, rf.size)
    with open_dqm(path) as f:
        assert f.run == 357131
    assert leftovers(tmp_path) == [path]
    # a second fetch is served from the cache: no request for the file
    n = https_server.count(path.name)
    assert src.fetch(rf) == path
    assert https_server.count(path.name) == n


def test_listing_cache_ttl(https_server: HTTPSServer, tmp_path: Path) -> None:
    clock = [1000.0]
    src = source(https_server, tmp_path, listing_ttl=60.0, now=lambda: clock[0])
    src.files(SERIES, SAMPLE)
    n = len(https_server.state.requests)
    assert n == 3  # dataset directory + two run directories
    clock[0] += 59.0
    src.files(SERIES, SAMPLE)
    assert len(https_server.state.requests) == n
    clock[0] += 2.0
    src.files(SERIES, SAMPLE)
    assert len(https_server.state.requests) == 2 * n


def test_size_mismatch(https_server: HTTPSServer, tmp_path: Path) -> None:
    name = offline_name(357100, "Run2022C-PromptReco-v1")
    rf = source(https_server, tmp_path).runs(SERIES, SAMPLE)[357100]
    https_server.state.listed_size[name] = rf.size + 7
    src = source(https_server, tmp_path)
    rf = src.runs(SERIES, SAMPLE)[357100]
    with pytest.raises(FetchError, match=rf"listed size is {rf.size} bytes but the server sends"):
        src.fetch(rf)
    assert leftovers(tmp_path) == []


def test_truncated_transfer_is_retried_then_fails(
    https_server: HTTPSServer, tmp_path: Path
) -> None:
    src = source(https_server, tmp_path)
    rf = src.runs(SERIES, SAMPLE)[357100]
    name = offline_name(357100, "Run2022C-PromptReco-v1")
    https_server.plan(name, "close", "close", "close")
    with pytest.raises(FetchError, match="cut short") as exc:
        src.fetch(rf)
    assert exc.value.url == rf.url
    assert https_server.count(name) == 3
    assert leftovers(tmp_path) == []


def test_truncated_once_then_ok(https_server: HTTPSServer, tmp_path: Path) -> None:
    src = source(https_server, tmp_path)
    rf = src.runs(SERIES, SAMPLE)[357100]
    https_server.plan(offline_name(357100, "Run2022C-PromptReco-v1"), "close")
    path = src.fetch(rf)
    assert path.stat().st_size == rf.size
    assert leftovers(tmp_path) == [path]


def test_content_length_larger_than_listed(https_server: HTTPSServer, tmp_path: Path) -> None:
    src = source(https_server, tmp_path, retries=0)
    rf = src.runs(SERIES, SAMPLE)[357100]
    https_server.plan(offline_name(357100, "Run2022C-PromptReco-v1"), "long")
    with pytest.raises(FetchError, match="listed size"):
        src.fetch(rf)
    assert leftovers(tmp_path) == []


def test_404_names_the_url(https_server: HTTPSServer, tmp_path: Path) -> None:
    src = source(https_server, tmp_path)
    with pytest.raises(FetchError, match=r"no dataset Run2022/NoSuchSample") as exc:
        src.files(SERIES, "NoSuchSample")
    assert exc.value.status == 404
    rf = src.runs(SERIES, SAMPLE)[357100]
    https_server.plan(offline_name(357100, "Run2022C-PromptReco-v1"), "404")
    with pytest.raises(FetchError, match=r"HTTP 404 .* no such run/file on the server") as exc:
        src.fetch(rf)
    assert exc.value.status == 404
    assert https_server.count(offline_name(357100, "Run2022C-PromptReco-v1")) == 1  # no retry
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("status", [401, 403])
def test_401_403_say_check_the_certificate(
    https_server: HTTPSServer, tmp_path: Path, status: int
) -> None:
    src = source(https_server, tmp_path)
    https_server.plan(f"OfflineData/{SERIES}/{SAMPLE}", str(status))
    with pytest.raises(FetchError, match=f"HTTP {status} .*check --cert/--key") as exc:
        src.files(SERIES, SAMPLE)
    assert exc.value.status == status
    assert leftovers(tmp_path) == []


def test_500_then_ok_is_retried(https_server: HTTPSServer, tmp_path: Path) -> None:
    slept: list[float] = []
    src = source(https_server, tmp_path, sleep=slept.append)
    https_server.plan(f"OfflineData/{SERIES}/{SAMPLE}", "500", "503")
    name = offline_name(357131, "Run2022C-PromptReco-v1")
    https_server.plan(name, "500")
    rf = src.runs(SERIES, SAMPLE)[357131]
    path = src.fetch(rf)
    assert path.stat().st_size == rf.size
    assert slept == [0.01, 0.02, 0.01]  # exponential backoff per call
    assert leftovers(tmp_path) == [path]


def test_500_forever_fails_after_retries(https_server: HTTPSServer, tmp_path: Path) -> None:
    src = source(https_server, tmp_path)
    https_server.plan(f"OfflineData/{SERIES}/{SAMPLE}", "500", "500", "500", "500")
    with pytest.raises(FetchError, match=r"HTTP 500 .*server error \(after 3 attempts\)"):
        src.files(SERIES, SAMPLE)


def test_timeout_is_retried_then_fails(https_server: HTTPSServer, tmp_path: Path) -> None:
    src = source(https_server, tmp_path, retries=1)
    rf = src.runs(SERIES, SAMPLE)[357100]
    name = offline_name(357100, "Run2022C-PromptReco-v1")
    https_server.state.sleep = 0.8
    https_server.plan(name, "sleep", "sleep")
    with pytest.raises(FetchError, match=r"timed out \(after 2 attempts\)"):
        src.fetch(rf)
    assert https_server.count(name) == 2
    assert leftovers(tmp_path) == []


def test_wrong_client_certificate(https_server: HTTPSServer, tmp_path: Path) -> None:
    src = source(https_server, tmp_path, cert="other")
    with pytest.raises(FetchError, match="rejected the client certificate") as exc:
        src.files(SERIES, SAMPLE)
    assert str(https_server.pki.other_cert) in str(exc.value)
    assert "\n" not in str(exc.value)
    assert leftovers(tmp_path) == []


def test_missing_client_certificate(https_server: HTTPSServer, tmp_path: Path) -> None:
    src = source(https_server, tmp_path, cert="none")
    with pytest.raises(FetchError, match="requires a client certificate; pass --cert and --key"):
        src.files(SERIES, SAMPLE)
    assert leftovers(tmp_path) == []


def test_unknown_server_ca(https_server: HTTPSServer, tmp_path: Path) -> None:
    src = source(https_server, tmp_path, ca=False)  # system bundle: our CA is not in it
    with pytest.raises(FetchError, match=r"certificate verify failed .*pass --ca"):
        src.files(SERIES, SAMPLE)
    assert leftovers(tmp_path) == []


def test_cert_and_key_in_one_file(https_server: HTTPSServer, tmp_path: Path) -> None:
    assert 357131 in source(https_server, tmp_path, cert="combined").runs(SERIES, SAMPLE)


def test_missing_cert_file_is_a_config_error(https_server: HTTPSServer, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--cert '.*nope\.pem': no such file"):
        DQMGUISource(https_server.url, cert=tmp_path / "nope.pem", cache=FileCache(tmp_path, 10))


def test_unsafe_names_from_the_server_are_refused(
    https_server: HTTPSServer, tmp_path: Path
) -> None:
    src = source(https_server, tmp_path)
    rel = f"OfflineData/{SERIES}/{SAMPLE}/0003571xx"
    bad = "../../DQM_V0001_R000357199__SingleMuon__x__DQMIO.root"
    https_server.state.extra_rows[rel] = (
        f"<tr><td><a href='x'>{bad}</a></td><td>5</td><td>-</td></tr>"
    )
    with pytest.raises(FetchError, match="refusing unsafe name"):
        src.files(SERIES, SAMPLE)
    assert leftovers(tmp_path) == []


def test_connection_refused_is_retried_then_clear(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    slept: list[float] = []
    src = DQMGUISource(
        f"https://127.0.0.1:{port}/dqm/offline/data/browse/ROOT/",
        cache=FileCache(tmp_path, 10**6),
        sleep=slept.append,
        **FAST,  # type: ignore[arg-type]
    )
    with pytest.raises(FetchError, match=r"cannot connect \(after 3 attempts\): .*refused"):
        src.files(SERIES, SAMPLE)
    assert len(slept) == 2


def test_ca_is_passed_per_request_despite_requests_ca_bundle(
    https_server: HTTPSServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REQUESTS_CA_BUNDLE pointing elsewhere must not override --ca (it would a Session.verify)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(https_server.pki.other_cert))
    assert 357100 in source(https_server, tmp_path).runs(SERIES, SAMPLE)
