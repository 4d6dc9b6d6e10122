"""One exception tree for everything a user can cause.

Every error ciwatch raises on purpose derives from :class:`CiwatchError` and
renders as one line naming where the problem is (file and line, config key,
topic/partition/offset), so the CLI can print it without a traceback.
"""

from __future__ import annotations

__all__ = [
    "CiwatchError",
    "ConfigError",
    "RuleError",
    "SourceError",
    "TaxonomyError",
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
