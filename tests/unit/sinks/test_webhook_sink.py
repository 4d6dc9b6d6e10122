"""The webhook sink against a real HTTP server on loopback: delivery, outages, refusals, spool."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from detector.metrics import Metrics
from detector.service_settings import WebhookSettings
from detector.sinks.webhook import WebhookSink
from detector.sinks.webhook_format import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from tests.receiver import Receiver, running_receiver
from tests.unit.sinks.test_webhook_format import make_alert

WAIT_S = 20.0
TOKEN = "s3cr3t-token-value"
KEY = "hmac-key-for-tests"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def make_sink(
    receiver: Receiver,
    tmp_path: Path,
    metrics: Metrics | None = None,
    log: Callable[[str], None] | None = lambda line: None,  # None: the logger
    **settings: object,
) -> WebhookSink:
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "key").write_text(KEY + "\n")
    options = {
        "url": receiver.url,
        "token_file": tmp_path / "token",
        "signing_key_files": [tmp_path / "key"],
        "max_backoff": "1s",
        **settings,
    }
    return WebhookSink(
        WebhookSettings.model_validate(options),
        spool_dir=tmp_path / "spool",
        metrics=metrics,
        log=log,
    )


def wait_for(condition: Callable[[], bool], what: str, step: Callable[[], None]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        step()
        time.sleep(0.05)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def test_alerts_arrive_signed_with_idempotency_keys(receiver: Receiver, tmp_path: Path) -> None:
    alert = make_alert("alice")
    sink = make_sink(receiver, tmp_path)
    sink.accept([alert])
    sink.flush()
    [(_, headers, body)] = receiver.received
    assert receiver.ids() == [alert.id]
    assert headers["Idempotency-Key"] == alert.id
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert verify_signature(
        body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], [KEY], now=time.time()
    )
    assert sink.depth == 0


def test_an_outage_spools_in_order_and_drains_when_the_siem_returns(
    receiver: Receiver, tmp_path: Path
) -> None:
    metrics = Metrics()
    receiver.answers = [(503, {})] * 3
    sink = make_sink(receiver, tmp_path, metrics, batch_size=1)
    alerts = [make_alert(f"user{i}") for i in range(5)]
    for alert in alerts:
        sink.accept([alert])
        sink.flush()  # returns at once: spooled, the consumer keeps going
    assert sink.depth > 0
    assert sample(metrics, "ciwatch_spool_depth", sink="webhook") == sink.depth
    wait_for(lambda: sink.depth == 0, "the spool to drain", sink.flush)
    assert list(dict.fromkeys(receiver.ids())) == [alert.id for alert in alerts]  # order kept
    assert sample(metrics, "ciwatch_sink_deliveries_total", sink="webhook", status="retry") == 3
    assert sample(metrics, "ciwatch_sink_deliveries_total", sink="webhook", status="delivered") == 5
    assert sample(metrics, "ciwatch_spool_depth", sink="webhook") == 0


def test_retry_after_is_honoured(receiver: Receiver, tmp_path: Path) -> None:
    receiver.answers = [(429, {"Retry-After": "1"})]
    sink = make_sink(receiver, tmp_path)
    sink.accept([make_alert()])
    sink.flush()
    wait_for(lambda: sink.depth == 0, "the retry", sink.flush)
    first, second = receiver.received[0][0], receiver.received[1][0]
    assert second - first >= 0.9


def test_a_refusal_goes_to_dead_letters_with_the_response(
    receiver: Receiver, tmp_path: Path
) -> None:
    metrics = Metrics()
    receiver.answers = [(400, {})]
    sink = make_sink(receiver, tmp_path, metrics)
    alert = make_alert()
    sink.accept([alert])
    sink.flush()
    assert sink.depth == 0
    letters = (tmp_path / "spool" / "dead-letters.jsonl").read_bytes().splitlines()
    [letter] = [orjson.loads(line) for line in letters]
    assert letter["status"] == 400 and "refused by test" in letter["response"]
    assert alert.id in letter["body"]
    refused = sample(metrics, "ciwatch_sink_deliveries_total", sink="webhook", status="dead_letter")
    assert refused == 1


def test_unauthorized_is_reported_loudly_not_spooled_forever(
    receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.answers = [(401, {})]
    sink = make_sink(receiver, tmp_path, log=None)
    with caplog.at_level(logging.ERROR, logger="ciwatch.sinks.webhook"):
        sink.accept([make_alert()])
        sink.flush()
    assert sink.depth == 0
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.__dict__["status"] == 401
    assert "401" in record.getMessage() and "token" in record.getMessage()


def test_a_full_spool_blocks_until_the_siem_takes_alerts(
    receiver: Receiver, tmp_path: Path
) -> None:
    receiver.answers = [(503, {})] * 4
    sink = make_sink(receiver, tmp_path, batch_size=1, spool_max_bytes=3000)
    waits: list[float] = []
    sink.keepalive = lambda: waits.append(time.monotonic())
    alerts = [make_alert(f"user{i}") for i in range(12)]
    for alert in alerts:
        sink.accept([alert])
        sink.flush()  # blocks while the spool is full, then goes on
        assert sink._spool.bytes <= 3000
    wait_for(lambda: sink.depth == 0, "the spool to drain", sink.flush)
    assert list(dict.fromkeys(receiver.ids())) == [alert.id for alert in alerts]
    assert waits, "blocked without telling the daemon's liveness it is waiting"


def test_no_secret_reaches_the_disk(receiver: Receiver, tmp_path: Path) -> None:
    receiver.answers = [(503, {})] * 50
    sink = make_sink(receiver, tmp_path)
    sink.accept([make_alert()])
    sink.flush()
    assert sink.depth == 1
    for path in (tmp_path / "spool").iterdir():
        assert TOKEN.encode() not in path.read_bytes()
        assert KEY.encode() not in path.read_bytes()


def test_a_slow_siem_pauses_the_caller_without_writing_to_disk(
    receiver: Receiver, tmp_path: Path
) -> None:
    receiver.gate = threading.Event()
    sink = make_sink(receiver, tmp_path, batch_size=1)
    alerts = [make_alert(f"user{i}") for i in range(5)]
    sink.accept(alerts)
    flushing = threading.Thread(target=sink.flush)
    flushing.start()
    wait_for(lambda: receiver.arrived == 1, "the first request", lambda: None)
    # The SIEM holds the first request: flush has not returned (the consumer waits,
    # nothing is committed), and a healthy SIEM's alerts never touch the spool.
    assert flushing.is_alive()
    assert sink.depth == 0 and sink._spool.bytes == 0
    receiver.gate.set()
    flushing.join(timeout=WAIT_S)
    assert not flushing.is_alive()
    assert sink.depth == 0
    assert receiver.ids() == [alert.id for alert in alerts]


class _Splunk:
    """A Splunk HEC endpoint with indexer acknowledgement: acks come on the ``ready``-th poll."""

    def __init__(self, ready: int) -> None:
        self.events: list[tuple[str | None, bytes]] = []
        self.polls: list[str | None] = []
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                channel = self.headers.get("X-Splunk-Request-Channel")
                reply: dict[str, object]
                if self.path.startswith("/services/collector/ack"):
                    state.polls.append(channel)
                    done = len(state.polls) >= ready
                    reply = {"acks": {str(i): done for i in orjson.loads(body)["acks"]}}
                else:
                    state.events.append((channel, body))
                    reply = {"text": "Success", "code": 0, "ackId": len(state.events)}
                payload = orjson.dumps(reply)
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/collector/event"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sink(self, tmp_path: Path) -> WebhookSink:
        (tmp_path / "token").write_text(TOKEN)
        settings = WebhookSettings.model_validate(
            {"url": self.url, "format": "splunk_hec", "token_file": tmp_path / "token",
             "splunk_ack": True, "ack_timeout": "1s", "max_backoff": "1s"}
        )  # fmt: skip
        return WebhookSink(
            settings, spool_dir=tmp_path / "spool", log=lambda line: None, sleep=lambda s: None
        )


def test_splunk_indexer_acknowledgement_is_awaited_on_the_same_channel(tmp_path: Path) -> None:
    splunk = _Splunk(ready=3)
    sink = splunk.sink(tmp_path)
    sink.accept([make_alert()])
    sink.flush()
    assert sink.depth == 0
    [(channel, _)] = splunk.events  # delivered once: acknowledged on the third poll
    assert channel is not None and splunk.polls == [channel] * 3
    splunk.server.shutdown()


def test_an_unacknowledged_request_stays_spooled_and_is_sent_again(tmp_path: Path) -> None:
    splunk = _Splunk(ready=10**9)
    sink = splunk.sink(tmp_path)
    sink.accept([make_alert()])
    sink.flush()
    assert sink.depth == 1 and len(splunk.events) == 1
    splunk.server.shutdown()
