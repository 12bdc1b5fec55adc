"""Real local alert receivers for tests: a webhook HTTP receiver and an SMTP server.

Both listen on 127.0.0.1 on a free port, run in a daemon thread and are context managers:

    with WebhookReceiver() as hook, SMTPServer() as smtp:
        ...  # hook.url, smtp.port; hook.mode = "error" | "hang" | "ok"

Import them with ``from tests.engine.alert_servers import SMTPServer, WebhookReceiver``.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self, cast

WebhookMode = Literal["ok", "error", "hang"]


@dataclass
class Post:
    """One POST the receiver saw (whatever it answered)."""

    path: str
    headers: dict[str, str]
    body: bytes
    answered: int  # HTTP status sent back (0: hung, never answered in time)

    def json(self) -> Any:
        return json.loads(self.body)


class _HookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HookHandler)
        self.mode: WebhookMode = "ok"
        self.posts: list[Post] = []
        self.lock = threading.Lock()
        self.release = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out closes its socket; answering it then fails. Expected.
        pass


class _HookHandler(BaseHTTPRequestHandler):
    server: _HookServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        mode = self.server.mode
        status = {"ok": 200, "error": 500, "hang": 0}[mode]
        post = Post(self.path, dict(self.headers.items()), body, status)
        with self.server.lock:
            self.server.posts.append(post)
        if mode == "hang":
            self.server.release.wait(30)
            return
        payload = b"ok" if status == 200 else b"internal error"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class WebhookReceiver:
    """A Slack/Mattermost-like incoming webhook that records every POST.

    ``mode``: ``"ok"`` answers 200, ``"error"`` answers 500, ``"hang"`` never answers
    (until the receiver closes). ``accepted`` lists the JSON bodies answered with 200.
    """

    def __init__(self) -> None:
        self._server = _HookServer()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/secret-token"

    @property
    def mode(self) -> WebhookMode:
        return self._server.mode

    @mode.setter
    def mode(self, value: WebhookMode) -> None:
        self._server.mode = value

    @property
    def posts(self) -> list[Post]:
        with self._server.lock:
            return list(self._server.posts)

    @property
    def accepted(self) -> list[Any]:
        return [p.json() for p in self.posts if p.answered == 200]

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Post]:
        """Wait until at least ``n`` POSTs arrived; return them all."""
        deadline = time.monotonic() + timeout
        while len(self.posts) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.posts


# ------------------------------------------------------------------------------- SMTP
@dataclass
class Mail:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_to: list[str]
    data: bytes
    auth: str = ""  # "user:password" when the client logged in

    @property
    def message(self) -> EmailMessage:
        return cast(EmailMessage, email.message_from_bytes(self.data, policy=email.policy.default))


@dataclass
class _SMTPState:
    mails: list[Mail] = field(default_factory=list)
    sessions: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    fail_mail_from: bool = False  # answer MAIL FROM with 451 (a transient failure)


class _SMTPHandler(socketserver.StreamRequestHandler):
    server: _SMTPTCPServer
    timeout = 10

    def _say(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        state = self.server.state
        with state.lock:
            state.sessions += 1
        self._say("220 localhost autodqm-test ESMTP")
        mail_from, rcpts, auth = "", [], ""
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            arg = line[len(verb) :].strip()
            if verb == "EHLO":
                self._say("250-localhost")
                self._say("250-8BITMIME")
                self._say("250 AUTH PLAIN")
            elif verb == "HELO":
                self._say("250 localhost")
            elif verb == "AUTH":
                mech, _, initial = arg.partition(" ")
                if mech.upper() != "PLAIN" or not initial:
                    self._say("504 only AUTH PLAIN with an initial response")
                    continue
                _, user, password = base64.b64decode(initial).decode().split("\0")
                auth = f"{user}:{password}"
                self._say("235 authenticated")
            elif verb == "MAIL":
                if state.fail_mail_from:
                    self._say("451 try again later")
                    continue
                mail_from, rcpts = arg.partition(":")[2].strip().strip("<>"), []
                self._say("250 OK")
            elif verb == "RCPT":
                rcpts.append(arg.partition(":")[2].strip().strip("<>"))
                self._say("250 OK")
            elif verb == "DATA":
                self._say("354 end with <CRLF>.<CRLF>")
                chunks = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    chunks.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                with state.lock:
                    state.mails.append(Mail(mail_from, rcpts, b"".join(chunks), auth))
                self._say("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self._say("250 OK")
            elif verb == "QUIT":
                self._say("221 bye")
                return
            else:
                self._say(f"502 {verb} not implemented")


class _SMTPTCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SMTPHandler)
        self.state = _SMTPState()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class SMTPServer:
    """A minimal ESMTP server (EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, QUIT)."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self._server = _SMTPTCPServer()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def mails(self) -> list[Mail]:
        with self._server.state.lock:
            return list(self._server.state.mails)

    @property
    def fail_mail_from(self) -> bool:
        return self._server.state.fail_mail_from

    @fail_mail_from.setter
    def fail_mail_from(self, value: bool) -> None:
        self._server.state.fail_mail_from = value

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Mail]:
        """Wait until at least ``n`` messages arrived; return them all."""
        deadline = time.monotonic() + timeout
        while len(self.mails) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.mails


def closed_port() -> int:
    """A local TCP port nothing listens on (connecting to it is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
