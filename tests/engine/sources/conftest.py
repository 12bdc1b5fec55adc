"""A real HTTPS DQM GUI file server on 127.0.0.1: throw-away CA, server and client certs.

The server requires a client certificate signed by its CA, serves DQM GUI listings of a
tmp tree of real ROOT files and misbehaves on request (``server.plan``).
"""

from __future__ import annotations

import datetime as dt
import html
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from engine.io import write_dqm
from engine.types import HistData, HistKind

PREFIX = "/dqm/offline/data/browse/ROOT/"
SERIES, SAMPLE = "Run2022", "SingleMuon"
#: (run, processing) of the offline files in the tree.
OFFLINE_RUNS = [
    (357100, "Run2022C-PromptReco-v1"),
    (357101, "Run2022C-PromptReco-v1"),
    (357101, "Run2022C-10Dec2022-v1"),
    (357129, "Run2022C-10Dec2022-v1"),
    (357131, "Run2022C-PromptReco-v1"),
    (357205, "Run2022C-Express-v1"),
]
ONLINE_RUNS = [(357100, "CSC"), (357100, "EMTF"), (357131, "CSC")]


def offline_name(run: int, proc: str, sample: str = SAMPLE) -> str:
    return f"DQM_V0001_R{run:09d}__{sample}__{proc}__DQMIO.root"


# --------------------------------------------------------------------------- PKI
@dataclass(frozen=True)
class PKI:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_cert: Path  # a client cert signed by another CA
    other_key: Path
    client_combined: Path  # cert + key in one PEM (grid proxy style)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name = issuer[0].subject if issuer else name
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
    if issuer is not None:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()), False
        )
    if server:
        san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        b = b.add_extension(x509.SubjectAlternativeName(san), False)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
    elif not ca:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
    return b.sign(issuer[1] if issuer else key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    d = tmp_path_factory.mktemp("pki")
    ca_key, other_ca_key = _key(), _key()
    ca = _cert("autodqm test CA", ca_key, None, ca=True)
    other_ca = _cert("some other CA", other_ca_key, None, ca=True)
    files: dict[str, bytes] = {"ca.pem": _pem(ca)}
    for stem, subject, issuer, server in (
        ("server", "localhost", (ca, ca_key), True),
        ("client", "shifter", (ca, ca_key), False),
        ("other", "stranger", (other_ca, other_ca_key), False),
    ):
        k = _key()
        files[f"{stem}.pem"] = _pem(_cert(subject, k, issuer, server=server))
        files[f"{stem}.key"] = _key_pem(k)
    files["client-combined.pem"] = files["client.pem"] + files["client.key"]
    for name, data in files.items():
        (d / name).write_bytes(data)
    return PKI(
        d / "ca.pem",
        d / "server.pem",
        d / "server.key",
        d / "client.pem",
        d / "client.key",
        d / "other.pem",
        d / "other.key",
        d / "client-combined.pem",
    )


# --------------------------------------------------------------------------- data tree
def _hist(run: int, scale: float) -> HistData:
    v = np.arange(1.0, 21.0) * scale
    e = (np.arange(21, dtype=np.float64),)
    return HistData("h", run, v, v.copy(), e, kind=HistKind.TH1, entries=float(v.sum()))


def write_tree(root: Path) -> None:
    """OfflineData and OnlineData trees of small real DQM ROOT files."""
    for i, (run, proc) in enumerate(OFFLINE_RUNS):
        d = root / "OfflineData" / SERIES / SAMPLE / (f"{run:09d}"[:7] + "xx")
        d.mkdir(parents=True, exist_ok=True)
        path = f"DQMData/Run {run}/CSC/Run summary/CSCOfflineMonitor/Occupancy/hORecHits"
        write_dqm(d / offline_name(run, proc), {path: _hist(run, 1 + i)})
    for run, subsys in ONLINE_RUNS:
        d = root / "OnlineData" / "original" / (f"{run:09d}"[:5] + "xxxx")
        d = d / (f"{run:09d}"[:7] + "xx")
        d.mkdir(parents=True, exist_ok=True)
        path = f"DQMData/Run {run}/{subsys}/Run summary/h"
        write_dqm(d / f"DQM_V0001_{subsys}_R{run:09d}.root", {path: _hist(run, 2.0)})
    (root / "golden.json").write_text('{"357100": [[1, 20]], "357131": [[1, 5], [7, 30]]}')


@pytest.fixture(scope="session")
def dqm_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dqmgui")
    write_tree(root)
    return root


# --------------------------------------------------------------------------- server
@dataclass
class ServerState:
    root: Path
    plans: dict[str, list[str]] = field(default_factory=dict)
    listed_size: dict[str, int] = field(default_factory=dict)
    extra_rows: dict[str, str] = field(default_factory=dict)  # dir rel path -> raw <tr> html
    requests: list[str] = field(default_factory=list)
    sleep: float = 1.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def plan(self, name: str, *actions: str) -> None:
        """Misbehave on the next requests whose path ends with ``name``: one action each.

        Actions: ``ok``, ``401``, ``403``, ``404``, ``500``, ``503``, ``close`` (send half the
        body, then close), ``long`` (Content-Length larger than the body, then close),
        ``sleep`` (wait ``self.sleep`` s before answering).
        """
        self.plans[name] = list(actions)

    def next_action(self, path: str) -> str:
        with self.lock:
            self.requests.append(path)
            for name, actions in self.plans.items():
                if path.rstrip("/").endswith(name.rstrip("/")) and actions:
                    return actions.pop(0)
        return "ok"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        state = self.server.state
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        action = state.next_action(path)
        if action == "sleep":
            time.sleep(state.sleep)
        elif action.isdigit():
            return self._send(int(action), b"error page\n", "text/plain")
        if not path.startswith(PREFIX):
            return self._send(404, b"not found\n", "text/plain")
        rel = path[len(PREFIX) :]
        target = (state.root / rel).resolve()
        if not target.is_relative_to(state.root.resolve()) or not target.exists():
            return self._send(404, b"not found\n", "text/plain")
        if target.is_dir():
            return self._send(200, self._listing(rel.strip("/"), target), "text/html")
        body = target.read_bytes()
        if action in ("close", "long"):
            length = len(body) if action == "close" else len(body) + 1000
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if action == "close" else body)
            self.wfile.flush()
            self.close_connection = True
            return None
        return self._send(200, body, "application/octet-stream")

    def _listing(self, rel: str, d: Path) -> bytes:
        rows = []
        for p in sorted(d.iterdir()):
            href = html.escape(PREFIX + (f"{rel}/" if rel else "") + p.name, quote=True)
            mtime = time.strftime("%Y-%b-%d %H:%M:%S", time.gmtime(p.stat().st_mtime))
            if p.is_dir():
                rows.append(
                    f"<tr><td><a href='{href}/'>{p.name}/</a></td><td>-</td><td>{mtime}</td></tr>"
                )
            else:
                size = self.server.state.listed_size.get(p.name, p.stat().st_size)
                rows.append(
                    f"<tr><td><a href='{href}'>{p.name}</a></td><td>{size}</td>"
                    f"<td>{mtime}</td></tr>"
                )
        extra = self.server.state.extra_rows.get(rel, "")
        page = (
            f"<html><head><title>DQM - ROOT/{rel}</title></head><body>"
            f"<h1>Index of {rel}</h1><table><tr><th>Name</th><th>Size</th><th>Date</th></tr>\n"
            + "\n".join(rows)
            + extra
            + "\n</table></body></html>\n"
        )
        return page.encode()

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: ServerState, ctx: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.ctx = ctx
        self.tls_errors: list[str] = []

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens in the handler thread, so a bad client cannot stall accept.
        assert isinstance(request, socket.socket)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as err:
            self.tls_errors.append(str(err))
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-response (timeouts) are part of the tests


@dataclass
class HTTPSServer:
    url: str  # base URL ending in /ROOT/
    state: ServerState
    pki: PKI
    tls_errors: list[str]

    offline_runs = OFFLINE_RUNS
    online_runs = ONLINE_RUNS

    @staticmethod
    def name(run: int, proc: str = "Run2022C-PromptReco-v1") -> str:
        """The offline file name of ``run``."""
        return offline_name(run, proc)

    def plan(self, name: str, *actions: str) -> None:
        self.state.plan(name, *actions)

    def count(self, fragment: str) -> int:
        return sum(fragment in r for r in self.state.requests)


@pytest.fixture
def https_server(pki: PKI, dqm_tree: Path) -> Iterator[HTTPSServer]:
    """A DQM GUI file server on https://127.0.0.1:<port>/dqm/offline/data/browse/ROOT/."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    ctx.load_verify_locations(pki.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    state = ServerState(dqm_tree)
    srv = _Server(state, ctx)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield HTTPSServer(
            f"https://127.0.0.1:{srv.server_address[1]}{PREFIX}", state, pki, srv.tls_errors
        )
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)
