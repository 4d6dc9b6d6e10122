"""A webhook receiver on loopback for tests: scripted answers, everything received recorded."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson


@dataclass
class Receiver:
    """What a webhook receiver answers (scripted, then 200) and what arrived."""

    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[tuple[float, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""
    gate: threading.Event | None = None
    """When set, each answer waits for the gate to open (a slow SIEM); ``arrived`` counts."""
    arrived: int = 0

    def answer(self) -> tuple[int, dict[str, str]]:
        return self.answers.pop(0) if self.answers else (200, {})

    def ids(self) -> list[str]:
        """Alert ids of the JSON-format bodies received, in arrival order."""
        return [alert["id"] for _, _, body in self.received for alert in orjson.loads(body)]

    def first_sends(self) -> set[str]:
        return {
            alert["id"]
            for _, _, body in self.received
            for alert in orjson.loads(body)
            if alert["revision"] == 0
        }


@contextmanager
def running_receiver(tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    """A :class:`Receiver` on 127.0.0.1 (free port) for the ``with`` block; HTTPS with ``tls``."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.arrived += 1
            if state.gate is not None:
                state.gate.wait(timeout=60)
            status, headers = state.answer()
            if status < 300:
                state.received.append((time.monotonic(), dict(self.headers), body))
            else:
                state.received.append((time.monotonic(), dict(self.headers), b"[]"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            reply = b"{}" if status < 300 else b'{"error": "refused by test"}'
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls is not None else "http"
    state.url = f"{scheme}://127.0.0.1:{server.server_address[1]}/alerts"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
