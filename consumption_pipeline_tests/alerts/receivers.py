"""Real receivers on loopback for the alert delivery tests: an HTTP server (http.server in a
thread) and an SMTP server (aiosmtpd), each recording what it receives."""

from __future__ import annotations

import socket
import threading
import time
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebhookReceiver:
    """Records every POST (headers and body); answers 503 to the first `fail_first` on purpose,
    after `delay` seconds if given; `stop()` takes it down (connections refused) and `start()`
    brings it back on the same port."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0) -> None:
        self.port = free_port()
        self.fail_first, self.delay = fail_first, delay
        self.requests: list[dict] = []  # every request, answered 2xx or not
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/alerts"

    @property
    def accepted(self) -> list[dict]:
        return [r for r in self.requests if r["status"] == 200]

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    failing = len(receiver.requests) < receiver.fail_first
                    status = 503 if failing else 200
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                              "body": body, "status": status})  # fmt: skip
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class _Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        )
        return "250 Message accepted for delivery"


class SmtpReceiver:
    """An SMTP server (aiosmtpd) that records each message: (sender, recipients, message)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.recorder = _Recorder()
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[tuple[str, list[str], Message]]:
        return self.recorder.messages

    def start(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
