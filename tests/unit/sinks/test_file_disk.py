"""The alerts file and the webhook's dead-letter file on a full disk: an ``OSError`` the
daemon pauses on (counted), the alerts kept in memory and written once, whole, when space
returns.

Full disks are the kernel's own: a symlink to ``/dev/full`` (``ENOSPC``), or a file-size
limit (``RLIMIT_FSIZE``, ``EFBIG``) that cuts a write in the middle of a line.
"""

from __future__ import annotations

import errno
import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from detector.alerts.model import Alert
from detector.metrics import Metrics
from detector.sinks.file import JsonlFileSink
from tests.full_disk import free, on_full_device
from tests.receiver import running_receiver
from tests.unit.sinks.test_webhook_format import make_alert
from tests.unit.sinks.test_webhook_sink import make_sink, sample
from tests.unit.sinks.test_webhook_sink import wait_for as wait_until
from tests.unit.test_daemon_pause import PausedSource, in_thread, make_daemon


def ids_in(path: Path) -> list[str]:
    return [orjson.loads(line)["id"] for line in path.read_bytes().splitlines()]


def alerts(count: int) -> list[Alert]:
    return [make_alert(f"user{n}") for n in range(count)]


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past ``limit`` bytes of any file fail with EFBIG (SIGXFSZ ignored meanwhile)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_a_full_disk_raises_an_oserror_and_keeps_the_alerts_until_space_returns(
    tmp_path: Path,
) -> None:
    metrics = Metrics()
    path = on_full_device(tmp_path / "alerts.jsonl")
    sink = JsonlFileSink(path, metrics=metrics)
    sent = alerts(3)
    sink.accept(sent)
    for attempt in (1, 2):
        with pytest.raises(OSError) as raised:  # what the daemon pauses on, not a ConfigError
            sink.flush()
        assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(path)
        assert sample(metrics, "ciwatch_spool_write_errors_total", sink="file") == attempt
    assert sink.pending > 0
    free(path)
    sink.flush()
    sink.close()
    assert ids_in(path) == [alert.id for alert in sent]
    assert sink.pending == 0


def test_a_write_cut_in_the_middle_of_a_line_is_rewritten_whole_and_once(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    sink = JsonlFileSink(path)
    before = alerts(2)
    sink.accept(before)
    sink.flush()
    size = path.stat().st_size
    after = [make_alert(f"later{n}") for n in range(3)]
    sink.accept(after)
    with file_size_limit(size + 150), pytest.raises(OSError) as raised:
        sink.flush()  # the first 150 bytes of the new lines land, then EFBIG
    assert raised.value.errno == errno.EFBIG
    assert path.stat().st_size == size + 150  # a torn line is in the file now
    sink.flush()  # the limit lifted: cut back to where the write began, then written again
    sink.close()
    assert ids_in(path) == [alert.id for alert in before + after]


def test_a_file_rotated_away_while_failing_gets_none_and_the_new_file_every_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "alerts.jsonl"
    sink = JsonlFileSink(path)
    sent = alerts(3)
    sink.accept(sent)
    with file_size_limit(150), pytest.raises(OSError):
        sink.flush()
    rotated = path.rename(tmp_path / "alerts.jsonl.1")
    sink.flush()  # reopens the path: a new file, written whole
    sink.close()
    assert ids_in(path) == [alert.id for alert in sent]
    assert rotated.stat().st_size == 150  # the old file keeps the torn start: not cut there


def test_close_with_alerts_pending_does_not_raise(tmp_path: Path) -> None:
    path = on_full_device(tmp_path / "alerts.jsonl")
    sink = JsonlFileSink(path)
    sink.accept(alerts(1))
    with pytest.raises(OSError):
        sink.flush()
    sink.close()  # the daemon's shutdown after a stop while paused: never committed anyway


def test_the_daemon_pauses_on_a_full_alerts_file_and_resumes(tmp_path: Path) -> None:
    metrics = Metrics()
    path = on_full_device(tmp_path / "alerts.jsonl")
    sink = JsonlFileSink(path, metrics=metrics)
    lines: list[str] = []
    daemon = make_daemon(tmp_path, [sink], lines, metrics)
    source = PausedSource()
    daemon.source = source  # type: ignore[assignment]
    sent = alerts(3)
    delivering, errors = in_thread(lambda: daemon._deliver(sent))
    wait_until(lambda: source.polls >= 3, "polls while paused", lambda: None)
    assert delivering.is_alive() and errors == []  # not crashed, not committed
    assert sample(metrics, "ciwatch_paused", reason="disk") == 1 and not daemon.ready()
    assert sample(metrics, "ciwatch_spool_write_errors_total", sink="file") >= 2
    assert [line for line in lines if "paused" in line] == [lines[0]]
    assert "sink file cannot write to disk" in lines[0]
    free(path)
    delivering.join(timeout=20)
    assert not delivering.is_alive() and errors == []
    assert sample(metrics, "ciwatch_paused", reason="disk") == 0 and daemon.ready()
    sink.close()
    assert ids_in(path) == [alert.id for alert in sent]


def test_a_dead_letter_the_disk_refuses_is_counted_and_raised_then_written(
    tmp_path: Path,
) -> None:
    metrics = Metrics()
    letters = on_full_device(tmp_path / "dead-letters.jsonl")
    alert = make_alert()
    with running_receiver() as receiver:
        receiver.answers = [(400, {})] * 2  # refused for good, and again when asked again
        sink = make_sink(receiver, tmp_path, metrics, dead_letter_file=letters)
        sink.accept([alert])
        with pytest.raises(OSError) as raised:  # what the daemon pauses on
            sink.flush()
        assert raised.value.errno == errno.ENOSPC
        assert sample(metrics, "ciwatch_spool_write_errors_total", sink="webhook") == 1
        free(letters)
        sink.flush()
        sink.close()
    [letter] = [orjson.loads(line) for line in letters.read_bytes().splitlines()]
    assert letter["status"] == 400 and alert.id in letter["body"]
