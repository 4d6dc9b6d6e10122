"""One exception tree for everything a user can cause.

Every error ciwatch raises on purpose derives from :class:`CiwatchError` and
renders as one line naming where the problem is (file and line, config key,
topic/partition/offset), so the CLI can print it without a traceback::

    CiwatchError
    ├── ConfigError            a setting, option, config or input file to fix (exit 2)
    │   ├── TaxonomyError
    │   ├── RuleError          (rules.fields.LocatedError, FieldPathError, ConditionError)
    │   └── ModelError         (scoring.envelope: an artifact that fails its checks)
    ├── SourceError            input cannot be read: a file, a corrupt stream (exit 2)
    │   ├── UnreachableError   a broker cannot be reached: retrying may work (exit 3)
    │   └── CompressionError, DecompressedTooLargeError (sources.framing)
    ├── ParseError, EnvelopeError  one bad record: a dead letter, never a CLI error
    └── NotFittedError, EngineStateError, SpoolFull

Errors raised inside pydantic validators also derive from ``ValueError``, which
pydantic turns into validation errors. The exit statuses are the CLI's
(:mod:`detector.cli`).
"""

from __future__ import annotations

__all__ = [
    "CiwatchError",
    "ConfigError",
    "RuleError",
    "SourceError",
    "TaxonomyError",
    "UnreachableError",
]


class CiwatchError(Exception):
    """Base of every error ciwatch raises deliberately."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class ConfigError(CiwatchError):
    """A setting, option or config file is invalid; `where` names the key or file."""


class TaxonomyError(ConfigError):
    """A taxonomy YAML file is invalid; `where` names the file and entry."""


class RuleError(ConfigError):
    """A rule pack is invalid; `where` names the file, the rule id and the field."""


class SourceError(CiwatchError):
    """A source (file, Kafka, embedded broker) cannot be read or started."""


class UnreachableError(SourceError):
    """A broker or service cannot be reached (refused, timed out): it may work later."""
