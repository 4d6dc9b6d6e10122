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
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["quick_init"]

_T = TypeVar("_T")


def quick_init(cls: type[_T]) -> type[_T]:
    """``cls`` (a frozen dataclass with slots and no ``__post_init__``) with the quick
    ``__init__``; anything else raises ``TypeError``."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen dataclass with slots")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if hasattr(cls, "__post_init__") or any(not f.init or f.kw_only for f in fields):
        raise TypeError(f"{cls.__name__} has fields quick_init does not build")
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


class _Factory:
    """The default of a field with a default factory: the factory is called instead."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()
