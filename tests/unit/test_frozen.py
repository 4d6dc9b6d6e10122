"""quick_init: a frozen dataclass built through its slots, the same as its own __init__."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from detector.events.model import Event
from detector.features.observation import Observation
from detector.frozen import quick_builder, quick_init
from detector.sources.record import Position, RawRecord


def _twins() -> tuple[type, type]:
    """The same frozen dataclass twice: as dataclasses builds it, and with quick_init."""

    def make() -> type:
        @dataclass(frozen=True, slots=True)
        class Record:
            name: str
            count: int = 3
            tags: list[str] = field(default_factory=list)
            note: str | None = None

        return Record

    return make(), quick_init(make())


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("a",), {}),
        (("a", 5), {}),
        (("a", 5, ["x"], "n"), {}),
        ((), {"name": "a", "note": "n"}),
        (("a",), {"tags": ["y"], "count": 0}),
    ],
)
def test_quick_init_builds_what_the_dataclass_init_builds(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    plain, quick = _twins()
    expected, built = plain(*args, **kwargs), quick(*args, **kwargs)
    assert dataclasses.astuple(built) == dataclasses.astuple(expected)
    assert repr(built).split("(", 1)[1] == repr(expected).split("(", 1)[1]
    assert built == quick(*args, **kwargs)
    assert inspect.signature(quick).parameters.keys() == inspect.signature(plain).parameters.keys()


def test_a_default_factory_gives_each_instance_its_own_value() -> None:
    _, quick = _twins()
    first, second = quick("a"), quick("b")
    first.tags.append("x")
    assert second.tags == []


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {}),
        (("a",), {"missing": 1}),
        (("a", 1, [], None, "extra"), {}),
        (("a",), {"name": "b"}),
    ],
)
def test_wrong_arguments_raise_type_error_as_the_dataclass_init_does(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    plain, quick = _twins()
    with pytest.raises(TypeError):
        plain(*args, **kwargs)
    with pytest.raises(TypeError):
        quick(*args, **kwargs)


def test_a_quick_instance_stays_frozen() -> None:
    _, quick = _twins()
    record = quick("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.name = "b"
    assert dataclasses.replace(record, count=9) == quick("a", 9)


def test_classes_it_cannot_build_are_refused() -> None:
    @dataclass(slots=True)
    class Mutable:
        name: str

    @dataclass(frozen=True)
    class NoSlots:
        name: str

    @dataclass(frozen=True, slots=True)
    class Checked:
        name: str

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class Derived:
        name: str
        size: int = field(init=False, default=0)

    for cls in (Mutable, NoSlots, Checked, Derived):
        with pytest.raises(TypeError):
            quick_init(cls)


@pytest.mark.parametrize("cls", [Event, Observation, Position, RawRecord])
def test_the_per_event_records_are_built_quickly_with_their_fields(cls: type) -> None:
    assert vars(cls)["__init__"].__code__.co_filename == "<string>"
    names = [item.name for item in dataclasses.fields(cls)]
    assert list(inspect.signature(cls).parameters) == names


def test_quick_builder_builds_what_the_class_builds() -> None:
    plain, _ = _twins()
    build: Callable[..., Any] = quick_builder(plain)
    built: Any = build("a", 5, ["x"], None)
    expected = plain("a", 5, ["x"], None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.name = "b"
    assert dataclasses.replace(built, count=9) == plain("a", 9, ["x"])
    assert built == expected
    assert repr(built) == repr(expected)
    assert hash(build("a", 5, (), None)) == hash(plain("a", 5, (), None))
    assert type(built) is plain


def test_quick_builder_needs_every_field() -> None:
    build: Callable[..., Any] = quick_builder(_twins()[0])
    with pytest.raises(TypeError):
        build("a", 5)


def test_quick_builder_refuses_what_it_cannot_build() -> None:
    @dataclass(slots=True)
    class Mutable:
        name: str

    @dataclass(frozen=True, slots=True)
    class Base:
        name: str

    @dataclass(frozen=True, slots=True)
    class Derived(Base):
        size: int = 0

    for cls in (Mutable, Derived):
        with pytest.raises(TypeError):
            quick_builder(cls)


def test_the_event_builder_builds_an_event() -> None:
    fields = dataclasses.fields(Event)
    values = [f"v{number}" for number in range(len(fields))]
    built = quick_builder(Event)(*values)
    assert type(built) is Event
    assert [getattr(built, f.name) for f in fields] == values
    assert built == Event(*values)  # type: ignore[arg-type]
