"""Fluent Bit and Fluentd: a ``log`` field holding the raw JSON, and ``[time, record]``.

Container logs tailed by Fluent Bit or Fluentd arrive as ``{"log": "<line>", "stream",
"time"}``; Fluent Bit's JSON outputs add the record time under ``date`` (its
``json_date_key`` default). Fluentd's forward protocol and ``out_file`` JSON carry an
event as ``[time, record]`` and a batch as ``[[time, record], ...]``. The times are
fallbacks only.
"""

from __future__ import annotations

from typing import Any

from detector.events.envelopes.base import Envelope, Inner, Opening, Reader, is_object, register
from detector.events.envelopes.logstash import decoded_container, json_text

__all__ = ["FluentEntries", "FluentLog"]


@register
class FluentLog(Envelope):
    name = "fluent_log"
    triggers = frozenset({"log"})

    def matches(self, doc: Any) -> bool:
        # Filebeat's "log" is an object ({"file": {"path"}}): only a string is a raw line.
        return json_text(doc["log"]) is not None

    def open(self, doc: Any, reader: Reader) -> Opening:
        value = decoded_container(doc["log"], reader)
        if value is None:
            return None
        shipped = next((doc[k] for k in ("time", "date", "@timestamp") if doc.get(k)), None)
        return [Inner(value, shipped)]


def _is_entry(value: Any) -> bool:
    return (
        type(value) is list
        and len(value) == 2
        and isinstance(value[0], int | float | str)
        and not isinstance(value[0], bool)
        and is_object(value[1])
    )


@register
class FluentEntries(Envelope):
    name = "fluentd"
    for_lists = True

    def matches(self, doc: Any) -> bool:
        return _is_entry(doc) or (bool(doc) and all(_is_entry(entry) for entry in doc))

    def open(self, doc: Any, reader: Reader) -> Opening:
        entries = [doc] if _is_entry(doc) else doc
        return [Inner(record, time) for time, record in entries]
