"""parsed(): the quick way parsers build Parsed, the same as the class."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import UTC, datetime

from detector.events.model import ActorType, Outcome
from detector.events.parsers.base import Parsed, parsed

_TIME = datetime(2026, 1, 5, tzinfo=UTC)


def test_parsed_takes_the_fields_of_parsed_with_their_defaults() -> None:
    fields = dataclasses.fields(Parsed)
    parameters = inspect.signature(parsed).parameters
    assert list(parameters) == [f.name for f in fields]
    for item in fields:
        default = parameters[item.name].default
        if item.default is not dataclasses.MISSING:
            assert default == item.default
        elif item.default_factory is not dataclasses.MISSING:
            assert default is None  # attributes: a new dict each time
        else:
            assert default is inspect.Parameter.empty


def test_parsed_builds_what_the_class_builds() -> None:
    arguments = {
        "time": _TIME,
        "action": "repo.create",
        "actor": "octocat",
        "outcome": Outcome.SUCCESS,
        "actor_type": ActorType.HUMAN,
        "ip": "192.0.2.1",
        "country": "US",
        "user_agent": "git/2",
        "target": "acme/api",
        "vendor_id": "id-1",
        "taxonomy_key": "key",
        "attributes": {"org": "acme"},
        "source": "github_audit",
    }
    assert parsed(**arguments) == Parsed(**arguments)  # type: ignore[arg-type]
    assert parsed(_TIME, "a", "b") == Parsed(_TIME, "a", "b")


def test_each_parsed_gets_its_own_attributes() -> None:
    first, second = parsed(_TIME, "a", "b"), parsed(_TIME, "a", "b")
    assert first.attributes == {} and first.attributes is not second.attributes
