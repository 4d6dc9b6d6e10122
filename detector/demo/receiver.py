"""The demo's stand-in SIEM: a webhook receiver on loopback that keeps each alert once."""

from __future__ import annotations

import gzip
import queue
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

__all__ = ["AlertReceiver"]


class AlertReceiver:
    """A stand-in SIEM: an HTTP server on 127.0.0.1 taking JSON arrays of alerts.

    Alerts are kept by id with their highest revision and the monotonic time
    their id first arrived; first arrivals are also put on :attr:`arrivals`.
    """

    def __init__(self) -> None:
        self.alerts: dict[str, dict[str, Any]] = {}
        self.arrived: dict[str, float] = {}
        self.arrivals: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.take))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/alerts"

    def take(self, body: bytes) -> None:
        """Keep the alerts of one request body."""
        for alert in orjson.loads(body):
            with self._lock:
                seen = self.alerts.get(alert["id"])
                if seen is None:
                    self.arrived[alert["id"]] = time.monotonic()
                    self.arrivals.put(alert)
                if seen is None or alert.get("revision", 0) >= seen.get("revision", 0):
                    self.alerts[alert["id"]] = alert

    def snapshot(self) -> tuple[list[dict[str, Any]], dict[str, float]]:
        with self._lock:
            return list(self.alerts.values()), dict(self.arrived)

    def __enter__(self) -> AlertReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(take: Callable[[bytes], None]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            try:
                take(body)
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                self.send_response(400)
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return  # the progress view shows the alerts; no access log

    return Handler
