"""Where alerts go: every sink has send / flush / close and a minimum severity."""

from detector.sinks.base import Sink
from detector.sinks.file import JsonlFileSink

__all__ = ["JsonlFileSink", "Sink"]
