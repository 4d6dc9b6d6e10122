"""Auto-detection by trigger keys chooses what asking every parser in order chooses."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import pytest

from detector.events.envelopes import Opener, unwrap
from detector.events.parsers import PARSERS, Parsed, Parser
from detector.events.parsers.choice import ParserChoice
from tests.unit.parsers.test_ecs import (
    FLAT_ROLE_GRANT,
    MACHINE_CONSOLE_LOGIN,
    MIXED_SECRET_READ,
    NESTED_FAILED_LOGIN,
)

DATA_DIR = Path(__file__).parents[2] / "data"
PARSER_NAMES = sorted(PARSERS)


def _objects(value: Any) -> Iterator[Mapping[str, Any]]:
    """Every object inside ``value``, itself included: more shapes than the records alone."""
    if isinstance(value, Mapping):
        yield value
        for child in value.values():
            yield from _objects(child)
    elif isinstance(value, list):
        for child in value:
            yield from _objects(child)


def _lower_keys(value: Any) -> Any:
    """The data-lake spelling: every key lower-cased (``eventName`` → ``eventname``)."""
    if isinstance(value, Mapping):
        return {str(key).lower(): _lower_keys(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_lower_keys(child) for child in value]
    return value


@cache
def corpus() -> tuple[Mapping[str, Any], ...]:
    """Every object in every test record (envelopes opened), as published and lower-cased."""
    # No published ECS audit events are in tests/data: test_ecs.py's own stand in.
    ecs = [NESTED_FAILED_LOGIN, FLAT_ROLE_GRANT, MIXED_SECRET_READ, MACHINE_CONSOLE_LOGIN]
    docs: list[Mapping[str, Any]] = [inner for doc in ecs for inner in _objects(doc)]
    for path in sorted(DATA_DIR.rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line, strict=False)
            except ValueError:
                continue  # the framing tests' deliberately broken lines
            for inner in unwrap(row):
                docs.extend(_objects(inner))
    # Shapes the records hold only beside other keys: a bare Panther tag, Okta's own
    # EventBridge rule target (an event under "detail" without the envelope's "detail-type").
    okta = next(doc for doc in docs if PARSERS["okta_system_log"]().matches(doc))
    docs += [
        {"p_log_type": "GitLab.Audit"},
        {"p_log_type": "Okta.SystemLog"},
        {"source": "aws.partner/okta.com/example/okta-events", "detail": okta},
    ]
    docs += [_lower_keys(doc) for doc in docs]
    return tuple(docs)


def test_the_corpus_holds_every_log_type() -> None:
    recognised = {name for name, cls in PARSERS.items() if any(map(cls().matches, corpus()))}
    assert recognised == set(PARSERS)


@pytest.mark.parametrize("name", PARSER_NAMES)
def test_a_parser_never_matches_a_document_without_its_triggers(name: str) -> None:
    parser = PARSERS[name]()
    assert parser.triggers, "every bundled parser declares its trigger keys"
    for doc in corpus():
        without = {key: value for key, value in doc.items() if key not in parser.triggers}
        assert not parser.matches(without), (name, sorted(doc))
        if parser.matches(doc):
            assert not parser.triggers.isdisjoint(doc), (name, sorted(doc))


def test_the_choice_is_the_first_match_in_priority_order() -> None:
    parsers = [cls() for cls in PARSERS.values()]
    ordered = sorted(parsers, key=lambda p: (p.priority, p.name))
    choice = ParserChoice(parsers)
    chosen = set()
    for doc in corpus():
        expected = next((p for p in ordered if p.matches(doc)), None)
        assert choice.choose(doc) is expected
        chosen.add(expected.name if expected else None)
    assert chosen == {*PARSERS, None}


def test_keys_read_with_the_envelopes_choose_as_the_document_does() -> None:
    # The normalizer reads the envelopes' and the parsers' trigger keys in one pass.
    opener = Opener()
    choice = ParserChoice(cls() for cls in PARSERS.values())
    both = opener.triggers | choice.triggers
    for doc in corpus():
        if type(doc) is not dict:
            continue
        keys = both.intersection(doc)
        assert choice.choose(doc, keys) is choice.choose(doc), sorted(doc)
        assert opener.recognise(doc, keys) is opener.recognise(doc), sorted(doc)


class _Everything(Parser):
    """A plug-in parser without triggers: asked about every record."""

    name = "everything"
    priority = 90
    time_field = "time"
    asked: ClassVar[int] = 0

    def matches(self, doc: Mapping[str, Any]) -> bool:
        _Everything.asked += 1
        return True

    def parse(self, doc: Mapping[str, Any]) -> Parsed:
        raise NotImplementedError


def test_a_parser_without_triggers_is_always_asked() -> None:
    github = PARSERS["github_audit"]()
    choice = ParserChoice([_Everything(), github])
    assert choice.choose({"action": "repo.create", "actor": "octocat"}) is github
    before = _Everything.asked
    assert isinstance(choice.choose({"unrelated": 1}), _Everything)
    assert _Everything.asked == before + 1


def test_hostile_key_mixes_do_not_grow_the_cache() -> None:
    choice = ParserChoice(cls() for cls in PARSERS.values())
    triggers = sorted(set().union(*(cls.triggers or () for cls in PARSERS.values())))
    for size in range(1, 4):
        for start in range(len(triggers)):
            choice.candidates(dict.fromkeys(triggers[start : start + size * 7 : size]))
    assert len(choice._candidates) <= 1024
