"""Logging for every command, set up in one place: JSON lines or plain text on stderr.

ciwatch's modules log through :mod:`logging` (``ciwatch.daemon``,
``ciwatch.sinks.webhook``, ...) and pass context as ``extra=``;
:func:`configure` (called once by the CLI) decides what reaches stderr and how:

- ``json``: one object a line — ``time`` (RFC 3339, UTC), ``level``, ``logger``,
  ``message``, then the context fields (``sink``, ``file``, ``error_type``, ...);
- ``text``: ``2025-06-01T12:00:00.000Z WARNING ciwatch.daemon: sink webhook failed: ...``;
- ``auto``: text at a terminal, otherwise JSON for the daemon and text for the
  one-shot commands, whose few lines are read by a person.

kafka-python's ``kafka`` loggers go through the same handler, at WARNING or
above (at INFO it logs every connection and group join), less one traceback of
a race in its shutdown (:func:`_not_close_race`). Every line is passed
through :func:`redact` on its way out: a URL's user info and secret-looking
query values never reach the log, whatever a caller or a library put in it.

    >>> import logging
    >>> logging.getLogger("ciwatch.daemon").warning(
    ...     "sink webhook failed", extra={"sink": "webhook", "error_type": "ConnectError"}
    ... )
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Literal, Protocol, TextIO

import orjson

from detector.errors import ConfigError

__all__ = [
    "FORMATS",
    "LEVELS",
    "JsonFormatter",
    "LineLog",
    "TextFormatter",
    "configure",
    "line_log",
    "redact",
    "settings_from",
]

LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
LogFormat = Literal["auto", "json", "text"]
FORMATS: dict[str, LogFormat] = {"auto": "auto", "json": "json", "text": "text"}

_LIBRARY_FLOOR = logging.WARNING  # kafka-python is chatty below this
_LIBRARIES = ("kafka",)
_KAFKA_TRANSPORT = "kafka.net.transport"
_OWN = "ciwatch"

# What every LogRecord has; anything else on a record came in through ``extra=``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

_USERINFO = re.compile(r"(?<=://)[^/\s@]+@")
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:token|access_token|api_key|apikey|key|secret|password|passwd|pwd|sig|"
    r"signature|auth)=)[^&#\s\"']+"
)


def redact(text: str) -> str:
    """``text`` with URL user info and secret-looking query values as ``***``.

    >>> redact("cannot reach https://svc:pw@siem/in?token=s3cret&x=1")
    'cannot reach https://***@siem/in?token=***&x=1'
    """
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub("***@", text))


def _context(record: logging.LogRecord) -> dict[str, object]:
    """The fields a caller passed with ``extra=``, strings redacted."""
    return {
        key: redact(value) if isinstance(value, str) else value
        for key, value in vars(record).items()
        if key not in _STANDARD and not key.startswith("_")
    }


def _rfc3339(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, then the context fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": _rfc3339(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in _context(record).items():
            line.setdefault(key, value)  # a context field never hides the four above
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message>``, for a person at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{_rfc3339(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return redact(text)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a line is logged (tests swap it)."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream or sys.stderr)
        self._fixed = stream is not None

    def emit(self, record: logging.LogRecord) -> None:
        if not self._fixed:
            self.stream = sys.stderr
        super().emit(record)


def settings_from(
    level: str | None, log_format: str | None, environ: Mapping[str, str]
) -> tuple[int, LogFormat]:
    """The level and format: the options if given, else ``CIWATCH_LOG_LEVEL`` /
    ``CIWATCH_LOG_FORMAT``, else info and auto. A bad variable is a ConfigError."""
    level_name = (level or environ.get("CIWATCH_LOG_LEVEL") or "info").strip().lower()
    if level_name not in LEVELS:
        message = f"expected one of {', '.join(LEVELS)}, got {level_name!r}"
        raise ConfigError(message, where="CIWATCH_LOG_LEVEL")
    format_name = (log_format or environ.get("CIWATCH_LOG_FORMAT") or "auto").strip().lower()
    if format_name not in FORMATS:
        message = f"expected one of {', '.join(FORMATS)}, got {format_name!r}"
        raise ConfigError(message, where="CIWATCH_LOG_FORMAT")
    return LEVELS[level_name], FORMATS[format_name]


def configure(
    level: int = logging.INFO,
    log_format: LogFormat = "auto",
    *,
    service: bool = False,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send ciwatch's and kafka-python's logs to stderr (or ``stream``); the handler used.

    ``service``: the daemon, whose ``auto`` format is JSON unless stderr is a
    terminal. Calling it again replaces the handler it installed before
    (the CLI's tests run many commands in one process); others' handlers stay.
    """
    out = stream or sys.stderr
    as_json = log_format == "json" or (log_format == "auto" and service and not out.isatty())
    handler = _StderrHandler(stream)
    handler.setFormatter(JsonFormatter() if as_json else TextFormatter())
    handler.addFilter(_not_close_race)
    handler.set_name("ciwatch")
    root = logging.getLogger()
    for previous in [h for h in root.handlers if h.get_name() == "ciwatch"]:
        root.removeHandler(previous)
        previous.close()
    root.addHandler(handler)
    root.setLevel(max(level, _LIBRARY_FLOOR))  # other libraries: warnings and errors only
    logging.getLogger(_OWN).setLevel(level)
    for library in _LIBRARIES:
        logging.getLogger(library).setLevel(max(level, _LIBRARY_FLOOR))
    return handler


def _not_close_race(record: logging.LogRecord) -> bool:
    """False for the traceback kafka-python 3.0 logs when a client closes a connection while
    its network thread is about to read it: the read finds the socket gone (``'NoneType'
    object has no attribute 'recv'``). The connection was closed on purpose and nothing
    is lost; every other line passes."""
    if record.name != _KAFKA_TRANSPORT or not record.exc_info:
        return True
    error = record.exc_info[1]
    return not (isinstance(error, AttributeError) and "'NoneType'" in str(error))


class LineLog(Protocol):
    """A component's log: a message, its level, and context fields for the JSON line."""

    def __call__(self, message: str, /, *, level: int = ..., **context: object) -> None:
        """Context names must not be LogRecord attributes: ``file``, not ``filename``."""


def line_log(name: str, custom: Callable[[str], None] | None = None) -> LineLog:
    """Log to the logger ``name``; or, when ``custom`` is given, hand it the message alone.

    ``custom`` keeps the ``log=`` parameters of the daemon and the webhook sink
    working for callers that show lines themselves (the demo's progress view,
    tests that collect them). A part handing its own log on to another
    (``Checkpoint(directory, log=self._log)``) keeps levels and context: a
    logger-backed one is replaced by the logger ``name``, a custom one passes
    its callable on.
    """
    if isinstance(custom, _CustomLog):
        return custom
    if custom is None or isinstance(custom, _LoggerLog):
        return _LoggerLog(logging.getLogger(name))
    return _CustomLog(custom)


class _LoggerLog:
    """A :class:`LineLog` writing to a logger, with the context as ``extra=``."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def __call__(self, message: str, /, *, level: int = logging.INFO, **context: object) -> None:
        self.logger.log(level, message, extra=context)


class _CustomLog:
    """A :class:`LineLog` handing the message alone to a callable (level and context dropped)."""

    def __init__(self, show: Callable[[str], None]) -> None:
        self.show = show

    def __call__(self, message: str, /, *, level: int = logging.INFO, **context: object) -> None:
        self.show(message)
