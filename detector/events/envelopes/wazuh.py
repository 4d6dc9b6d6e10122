"""Wazuh's integration wrapper: ``{"integration": "github", "github": {...}}``."""

from __future__ import annotations

from typing import Any

from detector.events.envelopes.base import Envelope, Inner, Opening, Reader, is_object, register

__all__ = ["WazuhIntegration"]


@register
class WazuhIntegration(Envelope):
    name = "wazuh"
    triggers = frozenset({"integration"})

    def matches(self, doc: Any) -> bool:
        integration = doc["integration"]
        return len(doc) == 2 and type(integration) is str and is_object(doc.get(integration))

    def open(self, doc: Any, reader: Reader) -> Opening:
        return [Inner(doc[doc["integration"]])]
