"""Declared field tables and the one interpreter that runs them.

Every closed field set the mapper writes (a user's standard fields, `purchase`, `refund`, each
product) is a `Table` of `Field` or `ArrayOf` rules, in the spirit of Segment's action
destinations: the table says where a field comes from and how its value is converted; `read`
does the looking up, converting and noting for all of them. Source names match ignoring case
and `_ - space` (`order_id`, `orderId` and `Order ID` are one field).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import sanitize
from .notes import Notes

LEFT_OUT = "properties left out"


class InvalidValue(ValueError):
    """A value that would break the closed schema even after coercion."""


Converter = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Derived:
    """A value derived from another field (`lastName` from the words after the first of
    `name`); `derive` gets that field's value and returns the value or None."""

    source: str
    derive: Converter


@dataclass(frozen=True, slots=True)
class Field:
    """A field read from the first of its sources that converts: `source` (the field's own
    name unless given), then `also`. `convert` returns the value, or None for "nothing to
    set", or raises `InvalidValue`; `fallback` derives a value from another field when no
    source gives one (a first name from `name`)."""

    convert: Converter
    source: str | None = None
    also: tuple[str, ...] = ()
    fallback: Derived | None = None


@dataclass(frozen=True, slots=True)
class ArrayOf:
    """A field holding an array of objects, each read by `table`; items that are not objects,
    past `max_items` or without the `required` field are left out (and noted)."""

    table: Table
    max_items: int
    required: str


Rule = Field | ArrayOf


class Table:
    """Target field -> rule, with every source name's lookup key computed once."""

    __slots__ = ("_derived", "_keys", "_names", "_sources", "_steps", "rules")

    def __init__(self, rules: dict[str, Rule]) -> None:
        self.rules = rules
        self._sources: dict[str, tuple[tuple[str, str], ...]] = {}
        for target, rule in rules.items():
            names = (target,) if isinstance(rule, ArrayOf) else (rule.source or target, *rule.also)
            self._sources[target] = tuple((name, sanitize.trait_key(name)) for name in names)
        self._names = {name: key for pairs in self._sources.values() for name, key in pairs}
        self._derived = {
            target: sanitize.trait_key(rule.fallback.source)
            for target, rule in rules.items()
            if isinstance(rule, Field) and rule.fallback is not None
        }
        self._keys = frozenset(self._names.values()) | frozenset(self._derived.values())
        # (target, rule, first source's key, whether other sources or a fallback can fill it:
        # None for an ArrayOf), so `read` skips an absent field without a call
        self._steps = tuple(
            (target, rule, pairs[0][1], _more(rule, pairs))
            for (target, rule), pairs in zip(rules.items(), self._sources.values(), strict=True)
        )

    @property
    def keys(self) -> frozenset[str]:
        """The lookup keys of every source name the table reads."""
        return self._keys

    def source_names(self, target: str) -> tuple[str, ...]:
        return tuple(name for name, _ in self._sources[target])

    def read(self, source: dict[str, Any], notes: Notes | None, where: str = "") -> dict[str, Any]:
        """The table's fields from `source`, in table order. With `notes`, whatever is not read,
        null or invalid is noted (prefixed with `where`); without, the rest is left quietly
        (identify turns it into custom fields)."""
        found = self._index(source, notes, where)
        fields: dict[str, Any] = {}
        for target, rule, key, more in self._steps:
            hit = found.get(key)
            if hit is None and not more:
                continue
            if isinstance(rule, ArrayOf):  # (an ArrayOf is skipped above when absent)
                value = self._array(target, rule, hit, notes, where) if hit is not None else None
            else:
                value = None
                if hit is not None and hit[1] is None:
                    if notes is not None:
                        notes.add(LEFT_OUT, f"{where}{hit[0]} (null)")
                elif hit is not None:
                    try:
                        value = rule.convert(hit[1])
                    except InvalidValue as error:
                        if notes is not None:
                            notes.invalid(f"{where}{hit[0]} {error}")
                if value is None and more:
                    value = self._others(target, rule, found)
            if value is not None:
                fields[target] = value
        return fields

    def _index(
        self, source: dict[str, Any], notes: Notes | None, where: str
    ) -> dict[str, tuple[str, Any]]:
        """Lookup key -> (name as sent, value); of several spellings the first non-empty wins."""
        if source.keys() <= self._names.keys():  # spelled exactly as declared: the fast case
            return {self._names[name]: (name, value) for name, value in source.items()}
        found: dict[str, tuple[str, Any]] = {}
        unread: list[str] = []
        trait_key = sanitize.trait_key
        for name, value in source.items():
            key = trait_key(name)
            seen = found.get(key)
            if seen is None:
                found[key] = (name, value)
            elif _empty(seen[1]) and not _empty(value):  # a later spelling, the first non-empty
                unread.append(seen[0])
                found[key] = (name, value)
            else:
                unread.append(name)  # another spelling of a field already seen
        if notes is not None:
            unread.extend(name for key, (name, _) in found.items() if key not in self._keys)
            notes.add(LEFT_OUT, *(f"{where}{sanitize.cut_chars(name, 64)}" for name in unread))
        return found

    def _others(self, target: str, rule: Field, found: dict[str, tuple[str, Any]]) -> Any:
        """A field's other sources, tried quietly in order, then its fallback."""
        for _, key in self._sources[target][1:]:
            hit = found.get(key)
            if hit is None or hit[1] is None:
                continue
            try:
                value = rule.convert(hit[1])
            except InvalidValue:
                continue
            if value is not None:
                return value
        if rule.fallback is not None:
            hit = found.get(self._derived[target])
            if hit is not None and hit[1] is not None:
                return rule.fallback.derive(hit[1])
        return None

    def _array(
        self, target: str, rule: ArrayOf, hit: tuple[str, Any], notes: Notes | None, where: str
    ) -> list[dict[str, Any]] | None:
        name, raw = hit
        if raw is None:
            _note(notes, f"{where}{name} (null)")
            return None
        if not isinstance(raw, list):
            if notes is not None:
                notes.invalid(f"{where}{name} must be an array of {target}")
            return None
        built: list[dict[str, Any]] = []
        for index, item in enumerate(raw):
            at = f"{where}{target}[{index}]"
            if not isinstance(item, dict):
                _note(notes, f"{at} (not an object)")
                continue
            if len(built) == rule.max_items:
                _note(notes, f"{where}{target}[{index}:] (over {rule.max_items})")
                break
            converted = rule.table.read(item, notes, f"{at}.")
            if rule.required not in converted:
                names = rule.table.source_names(rule.required)
                wanted = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
                _note(notes, f"{at} (no {wanted})")
                continue
            built.append(converted)
        return built


def _more(rule: Rule, sources: tuple[tuple[str, str], ...]) -> bool | None:
    if isinstance(rule, ArrayOf):
        return None
    return len(sources) > 1 or rule.fallback is not None


def _empty(value: Any) -> bool:
    return value is None or value == ""


def _note(notes: Notes | None, item: str) -> None:
    if notes is not None:
        notes.add(LEFT_OUT, item)
