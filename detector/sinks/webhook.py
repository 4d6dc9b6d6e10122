"""The SIEM webhook sink: signed batches over HTTPS, a disk spool while the SIEM is down.

Delivery guarantees (Vector's, which falcosidekick lacks):

- :meth:`WebhookSink.flush` returns only when every alert it was sent is
  delivered or in the fsync'd disk spool (:mod:`detector.sinks.spool`), so
  the daemon's offset commit after it loses nothing.
- A healthy SIEM gets alerts straight from memory: the disk is written only
  for what it does not take (an outage, a retry), so a full disk does not
  matter while the SIEM is up. If what it did not take cannot be spooled
  either (``ENOSPC``, ``EIO``), ``flush`` raises the ``OSError``, counted in
  ``ciwatch_spool_write_errors_total``; the requests stay in memory and the
  next ``flush`` tries the SIEM and the disk again (the daemon pauses
  consumption meanwhile and commits nothing).
- Requests go out in order: the spool first, oldest first; while the SIEM
  fails, new batches queue behind the oldest one. Retries back off exponentially with
  full jitter, capped at ``max_backoff``, and honour ``Retry-After``.
  Between attempts the consumer keeps running and spooling: a down SIEM
  does not stall detection. A full spool does: ``flush`` then blocks,
  retrying, so the consumer pauses instead of buffering without limit.
- Splunk HEC with ``splunk_ack``: a request is delivered once Splunk's
  indexer acknowledges it (polled on the sink's channel), else sent again.
- A request the SIEM refuses for good (other 4xx) goes to the dead-letter
  file with the response, counted; so does 401/403, logged loudly each time:
  a wrong token must be seen, not spooled forever. A dead letter the disk
  refuses is an ``OSError`` out of ``flush`` like a spool write's (counted in
  ``ciwatch_spool_write_errors_total``, the daemon pauses); the request stays
  where it was and is offered to the SIEM again afterwards.
- The spool holds bodies only: the token and the signature (fresh timestamp)
  are added at each attempt, so no secret reaches the disk.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import orjson

from detector.alerts.model import Alert
from detector.logs import line_log
from detector.metrics import Metrics
from detector.secrets import read_secret
from detector.service_settings import WebhookSettings, redact_url
from detector.sinks.base import Sink
from detector.sinks.spool import DiskSpool, SpooledRecord, SpoolFull
from detector.sinks.webhook_format import (
    FORMATS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    build_request,
    sign,
)
from detector.tls import client_context

__all__ = ["Outcome", "WebhookSink", "tls_context"]

_FIRST_BACKOFF = 0.5  # seconds before the first retry (then doubling, with jitter)
_RESPONSE_EXCERPT = 2_000  # characters of a refusing response kept in the dead letter
_TRANSIENT = frozenset({408, 425, 429})
_SPLUNK_CHANNEL = "X-Splunk-Request-Channel"
_ACK_POLL_S = 1.0  # between Splunk indexer-acknowledgement polls


class Outcome(Enum):
    """What became of one request."""

    DELIVERED = "delivered"
    RETRY = "retry"
    REFUSED = "dead_letter"
    UNAUTHORIZED = "unauthorized"


class WebhookSink(Sink):
    """POSTs alerts to ``settings.url`` in ``settings.format``; spools in ``spool_dir``."""

    name = "webhook"

    def __init__(
        self,
        settings: WebhookSettings,
        *,
        spool_dir: Path,
        metrics: Metrics | None = None,
        log: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(min_severity=settings.min_severity)
        self.settings = settings
        self._token = read_secret(
            settings.token_file, settings.token_env, name="service.webhook.token_file"
        )
        self._keys = [
            key
            for path in settings.signing_key_files
            if (key := read_secret(path, None, name="service.webhook.signing_key_files"))
        ]
        self._auth_scheme = FORMATS[settings.format].auth_scheme
        self._spool = DiskSpool(spool_dir, max_bytes=settings.spool_max_bytes)
        self._dead_letters = settings.dead_letter_file or spool_dir / "dead-letters.jsonl"
        self._metrics = metrics or Metrics()
        self._log = line_log("ciwatch.sinks.webhook", log)
        self._shown_url = redact_url(settings.url)  # the url may carry credentials
        self._sleep = sleep
        self._client = httpx.Client(
            verify=tls_context(settings), timeout=settings.timeout.total_seconds()
        )
        self._channel = str(uuid.uuid4())  # Splunk HEC: acknowledgements are per channel
        self._pending: list[dict[str, Any]] = []  # requests sent, neither delivered nor spooled
        self._ack_failing = False  # the spool's acknowledgement could not be written
        self._failures = 0
        self._next_attempt = 0.0
        self._publish_spool()

    def send(self, batch: Sequence[Alert]) -> None:
        size = self.settings.batch_size
        for start in range(0, len(batch), size):
            chunk = batch[start : start + size]
            request = build_request(chunk, format=self.settings.format, token=self._token)
            headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
            record = {"headers": headers, "body": request.body.decode(), "count": len(chunk)}
            self._pending.append(record)

    def flush(self) -> None:
        """Deliver what was sent, spooled requests first; spool (fsync'd) what the SIEM refused.

        Raises ``OSError`` if that cannot be spooled; the requests are kept for the next call.
        """
        try:
            while True:
                if time.monotonic() >= self._next_attempt:
                    self._drain()
                    if not self._spool.depth:
                        self._send_pending()
                if not self._pending or self._spool_pending():
                    return
                # Back-pressure: a full spool waits for the SIEM rather than hold alerts in memory.
                self.keepalive()
                self._sleep(max(0.0, self._next_attempt - time.monotonic()))
                self._publish_spool()
        finally:
            self._publish_spool()

    def close(self) -> None:
        try:
            if self._pending and not self._spool_pending():
                raise OSError("the spool is full")
        except OSError as exc:
            # Not committed either: the source gives these alerts again after a restart.
            self._log(
                f"{len(self._pending)} requests not spooled at close: {exc}",
                level=logging.WARNING,
                sink=self.name,
                error_type=type(exc).__name__,
            )
        self._client.close()
        self._spool.close()

    @property
    def depth(self) -> int:
        """Requests waiting in the spool."""
        return self._spool.depth

    def _spool_pending(self) -> bool:
        """Append the pending requests to the spool, fsync'd; False if they do not fit."""
        try:
            self._spool.append([orjson.dumps(request) for request in self._pending])
            self._spool.sync()
        except SpoolFull:
            return False
        except OSError:
            self._metrics.spool_write_errors.labels(self.name).inc()
            raise  # the spool rolled the write back: the requests are still only here
        self._pending = []
        return True

    def _send_pending(self) -> None:
        """Deliver the pending requests straight from memory, in order, until one must wait."""
        while self._pending:
            if not self._deliver(self._pending[0], path="direct"):
                return
            self._pending.pop(0)

    def _drain(self) -> None:
        """Deliver from the oldest spooled request until empty or a retryable failure."""
        while self._spool.depth:
            [record] = self._spool.peek(1)
            if not self._deliver(orjson.loads(record.payload), path="spool"):
                return
            self._acknowledge(record)

    def _deliver(self, request: dict[str, Any], *, path: str) -> bool:
        """One attempt at ``request``; whether it is done with (delivered or refused for good)."""
        outcome, retry_after = self._attempt(request)
        count = int(request["count"])
        self._metrics.deliveries.labels(self.name, outcome.value).inc(count)
        if outcome is Outcome.RETRY:
            self._failures += 1
            self._next_attempt = time.monotonic() + self._backoff(retry_after)
            return False
        self._failures = 0
        if outcome is Outcome.DELIVERED:
            self._metrics.delivered_via.labels(self.name, path).inc(count)
        return True

    def _acknowledge(self, record: SpooledRecord) -> None:
        """Drop a delivered record from the spool; a full disk only delays making that durable.

        The acknowledgement holds in memory either way (a restart before the
        next durable one sends the record again: at-least-once), so delivery
        goes on. Logged once when it starts failing and once when it works again.
        """
        try:
            self._spool.ack(record.position)
        except OSError as exc:
            self._metrics.spool_write_errors.labels(self.name).inc()
            if not self._ack_failing:
                self._log(
                    f"cannot record deliveries in the spool ({exc.strerror}); a restart "
                    "would send them again",
                    level=logging.WARNING,
                    sink=self.name,
                    error_type=type(exc).__name__,
                )
            self._ack_failing = True
            return
        if self._ack_failing:
            self._log("deliveries recorded in the spool again", sink=self.name)
        self._ack_failing = False

    def _attempt(self, request: dict[str, Any]) -> tuple[Outcome, float | None]:
        body = str(request["body"]).encode()
        headers = dict(request["headers"])
        headers.update(self._authorization())
        if self.settings.splunk_ack:
            headers[_SPLUNK_CHANNEL] = self._channel
        if self._keys:
            timestamp = int(time.time())
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = sign(body, timestamp, self._keys)
        try:
            response = self._client.post(self.settings.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            self._log(
                f"cannot reach {self._shown_url}: {type(exc).__name__}; will retry",
                level=logging.WARNING,
                sink=self.name,
                url=self._shown_url,
                error_type=type(exc).__name__,
            )
            return Outcome.RETRY, None
        status = response.status_code
        if status < 300:
            if self.settings.splunk_ack and not self._indexed(response):
                return Outcome.RETRY, None
            return Outcome.DELIVERED, None
        if status >= 500 or status in _TRANSIENT:
            return Outcome.RETRY, _retry_after(response)
        outcome = Outcome.UNAUTHORIZED if status in (401, 403) else Outcome.REFUSED
        if outcome is Outcome.UNAUTHORIZED:
            self._log(
                f"ERROR: {self._shown_url} answered {status}: check the token",
                level=logging.ERROR,
                sink=self.name,
                url=self._shown_url,
                status=status,
            )
        self._dead_letter(request, response)
        return outcome, None

    def _indexed(self, response: httpx.Response) -> bool:
        """Wait for Splunk to acknowledge the request's ``ackId`` (indexer acknowledgement).

        Polls ``/services/collector/ack`` on the same channel until the id is
        acknowledged or ``ack_timeout`` passes; False means send it again.
        """
        try:
            ack_id = int(response.json()["ackId"])
        except (ValueError, KeyError, TypeError):
            self._log(
                "Splunk answered without an ackId: is indexer acknowledgement on?",
                level=logging.WARNING,
                sink=self.name,
            )
            return False
        url = self.settings.url.split("/services/collector", 1)[0] + "/services/collector/ack"
        headers = {_SPLUNK_CHANNEL: self._channel, **self._authorization()}
        deadline = time.monotonic() + self.settings.ack_timeout.total_seconds()
        while time.monotonic() < deadline:
            try:
                answer = self._client.post(url, json={"acks": [ack_id]}, headers=headers)
                if answer.status_code < 300 and answer.json()["acks"].get(str(ack_id)):
                    return True
            except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
                pass  # not acknowledged yet, as far as we can tell: ask again
            self.keepalive()
            self._sleep(_ACK_POLL_S)
        return False

    def _authorization(self) -> dict[str, str]:
        """The token header, added at each attempt so that it never reaches the spool."""
        if self._token is None:
            return {}
        return {"Authorization": f"{self._auth_scheme} {self._token.get_secret_value()}"}

    def _backoff(self, retry_after: float | None) -> float:
        cap = self.settings.max_backoff.total_seconds()
        if retry_after is not None:
            return min(retry_after, cap)
        ceiling = min(cap, _FIRST_BACKOFF * 2 ** min(self._failures - 1, 30))
        return random.uniform(0.0, ceiling)

    def _dead_letter(self, request: dict[str, Any], response: httpx.Response) -> None:
        letter = {
            "status": response.status_code,
            "response": response.text[:_RESPONSE_EXCERPT],
            "headers": request["headers"],
            "body": request["body"],
        }
        try:
            with self._dead_letters.open("ab") as handle:
                handle.write(orjson.dumps(letter) + b"\n")
        except OSError:
            # Raised out of flush, so the daemon pauses: the request is still pending
            # (or spooled), asked again after the pause and dead-lettered then.
            self._metrics.spool_write_errors.labels(self.name).inc()
            raise

    def _publish_spool(self) -> None:
        self._metrics.spool_depth.labels(self.name).set(self._spool.depth)
        self._metrics.spool_bytes.labels(self.name).set(self._spool.bytes)
        self._metrics.spool_capacity.labels(self.name).set(self.settings.spool_max_bytes)


def tls_context(settings: WebhookSettings) -> ssl.SSLContext:
    """Verification against the system CAs or ``ca_file``, hostname checked; client cert if any."""
    return client_context(
        settings.ca_file,
        settings.client_cert_file,
        settings.client_key_file,
        cafile_key="service.webhook.ca_file",
        certfile_key="service.webhook.client_cert_file",
    )


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (the delay form; an HTTP date is treated as absent)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
