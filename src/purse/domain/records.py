"""Value records for the compiled domain modules.

A record built on a hot path (every check, every settled operation) is a plain slotted
class with an explicit `__init__` rather than a dataclass or a NamedTuple: compiled with
mypyc (setup.py), such a class is built natively, while a dataclass's generated
`__init__` still runs as Python (slower than the plain-Python class it replaces), and a
NamedTuple costs several times as much to build. `Record` gives these classes the value
semantics a dataclass would: equality and hashing by value, a repr naming each field,
copying and pickling (by the constructor, which a compiled class needs), and `_replace`
for a copy with some fields changed (slow: not for hot paths).

Contract: a subclass lists its attributes, in constructor order, in `_fields`; two records
are equal when they are of the same class and their `_fields` values are equal. A module
that defines one is compiled too (setup.py): an interpreted class cannot inherit from a
compiled one.
"""

from __future__ import annotations

from typing import ClassVar, Self


class Record:
    """Equality, hashing, repr and copies by the values of `_fields`, in order."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple([getattr(self, name) for name in self._fields])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record) or type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        values = ", ".join([f"{name}={getattr(self, name)!r}" for name in self._fields])
        return f"{type(self).__name__}({values})"

    def __reduce__(self) -> tuple[type[Record], tuple[object, ...]]:
        return type(self), self._values()

    def _replace(self, **changes: object) -> Self:
        """A copy with the named fields changed (as a NamedTuple's, or `dataclasses.replace`)."""
        values = dict(zip(self._fields, self._values(), strict=True))
        values.update(changes)
        return type(self)(**values)
