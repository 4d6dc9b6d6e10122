"""Frozen dataclasses built at about the cost of plain ones, for the per-event records.

A frozen dataclass's generated ``__init__`` stores each field through
``object.__setattr__`` (its own ``__setattr__`` refuses), looked up on every
store: a 16-field :class:`~detector.events.model.Event` cost 1.8 µs to build,
and every record makes a position, a raw record, an event and an observation.
:func:`quick_init` gives such a class an ``__init__`` that stores through the
slots' own descriptors instead, bound once: the same signature, defaults and
default factories, and the instance is as frozen as before (assigning an
attribute still raises ``FrozenInstanceError``). Like :mod:`dataclasses`, it
writes the method's source and compiles it, once per class.

:func:`quick_builder` goes further for the hottest one (an Event per record): a
function that fills a plain twin of the class (the same slots, not frozen) with
ordinary attribute stores and then makes it an instance of the frozen class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["quick_builder", "quick_init"]

_T = TypeVar("_T")


def quick_init(cls: type[_T]) -> type[_T]:
    """``cls`` (a frozen dataclass with slots and no ``__post_init__``) with the quick
    ``__init__``; anything else raises ``TypeError``."""
    fields = _buildable_fields(cls)
    namespace: dict[str, Any] = {"_FACTORY": _FACTORY}
    arguments, stores = [], []
    for number, item in enumerate(fields):
        name = item.name
        namespace[f"_set{number}"] = getattr(cls, name).__set__
        value = name
        if item.default is not dataclasses.MISSING:
            namespace[f"_default{number}"] = item.default
            name = f"{name}=_default{number}"
        elif item.default_factory is not dataclasses.MISSING:
            namespace[f"_factory{number}"] = item.default_factory
            value = f"_factory{number}() if {name} is _FACTORY else {name}"
            name = f"{name}=_FACTORY"
        arguments.append(name)
        stores.append(f"    _set{number}(self, {value})")
    source = f"def __init__(self, {', '.join(arguments)}):\n" + "\n".join(stores or ["    pass"])
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def quick_builder(cls: type[_T]) -> Callable[..., _T]:
    """A function taking every field of ``cls`` positionally (no defaults) and returning
    the instance ``cls(*fields)`` would: the same type, field values, equality and frozenness.

    A frozen class's ``__init__`` has to store each field through its slot's descriptor
    (about 60 ns each, and CPython also builds an argument tuple to call a class); a plain
    twin with the same ``__slots__`` takes ordinary stores, then its ``__class__`` is set
    to ``cls``, which CPython allows between classes with the same slots. For the 16-field
    Event: 0.55 µs instead of 1.2 µs. ``TypeError`` for a class this cannot build.
    """
    names = [item.name for item in _buildable_fields(cls)]
    if tuple(names) != cls.__dict__["__slots__"] or cls.__bases__ != (object,):
        raise TypeError(f"{cls.__name__}'s slots are not its fields alone")
    twin = type(f"_{cls.__name__}Twin", (), {"__slots__": cls.__dict__["__slots__"]})
    probe: Any = object.__new__(twin)
    probe.__class__ = cls  # raises TypeError now if CPython refuses the layout
    namespace: dict[str, Any] = {"_new": object.__new__, "_twin": twin, "_cls": cls}
    stores = "".join(f"    built.{name} = {name}\n" for name in names)
    source = (
        f"def build_{cls.__name__}({', '.join(names)}):\n"
        f"    built = _new(_twin)\n{stores}    built.__class__ = _cls\n    return built\n"
    )
    exec(source, namespace)
    builder: Callable[..., _T] = namespace[f"build_{cls.__name__}"]
    return builder


def _buildable_fields(cls: type[Any]) -> tuple[dataclasses.Field[Any], ...]:
    """``cls``'s fields, if it is a frozen dataclass with slots whose ``__init__`` sets each."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen dataclass with slots")
    fields = dataclasses.fields(cls)
    if hasattr(cls, "__post_init__") or any(not f.init or f.kw_only for f in fields):
        raise TypeError(f"{cls.__name__} has fields quick_init does not build")
    return fields


class _Factory:
    """The default of a field with a default factory: the factory is called instead."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()
