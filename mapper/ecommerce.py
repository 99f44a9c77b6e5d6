"""`purchase` and `refund`: SaaSquatch's closed field schemas, declared one line per field.

Segment E-commerce v2 properties are looked up by name ignoring case and `_ - space`, so
`order_id`, `orderId` and `Order ID` all fill `order_id`. Anything not in the table is left out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import sanitize
from .segment import trait_index

TEXT_MAX = 375
MAX_PRODUCTS = 200
_CURRENCY = re.compile(r"[A-Z]{3}")


class InvalidValue(ValueError):
    """A value that would break the closed schema even after coercion."""


Converter = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class ArrayOf:
    """A field holding an array of objects, each converted by its own table (`fields`): items
    that are not objects, past `max_items`, or without any of `id_sources` are left out."""

    fields: dict[str, Rule]
    max_items: int
    id_field: str
    id_sources: tuple[str, ...]
    id_keys: frozenset[str] = field(init=False)  # the sources' lookup keys, computed once

    def __post_init__(self) -> None:
        keys = frozenset(sanitize.trait_key(name) for name in self.id_sources)
        object.__setattr__(self, "id_keys", keys)


Rule = Converter | ArrayOf


def text(value: Any) -> str:
    """Strings cut to 375; numbers (`"order_id": 12345`) become their string form."""
    if isinstance(value, str):
        return sanitize.cut_chars(value, TEXT_MAX)
    as_text = sanitize.id_text(value)
    if as_text is None:
        raise InvalidValue("must be a string")
    return as_text[:TEXT_MAX]


def _number(value: Any) -> int | float:
    if sanitize.is_number(value):
        return value
    if isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            raise InvalidValue("must be a number") from None
        if math.isfinite(parsed):
            return int(parsed) if parsed.is_integer() and "." not in value else parsed
    raise InvalidValue("must be a number")


def amount(value: Any) -> int | float:
    """A number >= 0; numeric strings (`"39.95"`) are accepted."""
    number = _number(value)
    if number < 0:
        raise InvalidValue("must be >= 0")
    return number


def integer(value: Any) -> int:
    number = _number(value)
    if isinstance(number, float):
        if not number.is_integer():
            raise InvalidValue("must be a whole number")
        number = int(number)
    return number


def count(value: Any) -> int:
    number = integer(value)
    if number < 0:
        raise InvalidValue("must be >= 0")
    return number


def currency(value: Any) -> str:
    """ISO 4217 code, upper-cased (`usd` -> `USD`)."""
    if isinstance(value, str):
        code = value.strip().upper()
        if _CURRENCY.fullmatch(code):
            return code
    raise InvalidValue("must be a three-letter currency code")


PRODUCT_FIELDS: dict[str, Rule] = {
    "product_id": text,
    "sku": text,
    "category": text,
    "name": text,
    "brand": text,
    "variant": text,
    "coupon": text,
    "url": text,
    "image_url": text,
    "price": amount,
    "quantity": count,
    "position": integer,
}

# Product ids SaaSquatch requires; Segment products sometimes carry only `id` or `sku`.
PRODUCTS = ArrayOf(
    PRODUCT_FIELDS,
    max_items=MAX_PRODUCTS,
    id_field="product_id",
    id_sources=("product_id", "id", "sku"),
)

PURCHASE_FIELDS: dict[str, Rule] = {
    "checkout_id": text,
    "order_id": text,
    "affiliation": text,
    "coupon": text,
    "subtotal": amount,
    "total": amount,
    "revenue": amount,
    "shipping": amount,
    "tax": amount,
    "discount": amount,
    "currency": currency,
    "products": PRODUCTS,
}

REFUND_FIELDS: dict[str, Rule] = {
    name: PURCHASE_FIELDS[name]
    for name in ("order_id", "affiliation", "total", "revenue", "shipping", "tax", "currency")
} | {"products": PRODUCTS}

SCHEMAS: dict[str, dict[str, Rule]] = {"purchase": PURCHASE_FIELDS, "refund": REFUND_FIELDS}

# Each schema field's lookup key (`order_id` -> `orderid`), computed once.
_TARGET_KEYS = {
    target: sanitize.trait_key(target)
    for schema in (PURCHASE_FIELDS, REFUND_FIELDS, PRODUCT_FIELDS)
    for target in schema
}


class Problems:
    """Collects what was left out (names only) and values that broke the schema."""

    def __init__(self) -> None:
        self.left_out: list[str] = []
        self.invalid: list[str] = []


def _convert(
    schema: dict[str, Rule],
    source: dict[str, Any],
    where: str,
    problems: Problems,
    also_read: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for target, name, value in _matches(schema, source, where, problems, also_read):
        if value is None:
            problems.left_out.append(f"{where}{name} (null)")
            continue
        rule = schema[target]
        try:
            fields[target] = (
                _array(rule, target, value, problems) if isinstance(rule, ArrayOf) else rule(value)
            )
        except InvalidValue as error:
            problems.invalid.append(f"{where}{name} {error}")
    return fields


def _matches(
    schema: dict[str, Rule],
    source: dict[str, Any],
    where: str,
    problems: Problems,
    also_read: frozenset[str],
) -> list[tuple[str, str, Any]]:
    """(schema field, source name, value) in schema order; notes the source fields left out."""
    if source.keys() <= schema.keys():  # spelled exactly as the spec: the usual, fast case
        return [(target, target, source[target]) for target in schema if target in source]
    by_key: dict[str, tuple[str, Any]] = {}
    repeated: list[str] = []  # another spelling of a field already seen (`orderId`, `order_id`)
    for name, value in source.items():
        if by_key.setdefault(sanitize.trait_key(name), (name, value))[0] is not name:
            repeated.append(name)
    found = []
    for target in schema:
        hit = by_key.pop(_TARGET_KEYS[target], None)
        if hit is not None:
            found.append((target, *hit))
    unused = [name for key, (name, _) in by_key.items() if key not in also_read] + repeated
    problems.left_out.extend(f"{where}{sanitize.cut_chars(name, 64)}" for name in unused)
    return found


def _array(rule: ArrayOf, name: str, value: Any, problems: Problems) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise InvalidValue(f"must be an array of {name}")
    built: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(item, dict):
            problems.left_out.append(f"{where} (not an object)")
            continue
        if len(built) == rule.max_items:
            problems.left_out.append(f"{name}[{index}:] (over {rule.max_items})")
            break
        converted = _convert(rule.fields, item, f"{where}.", problems, rule.id_keys)
        if rule.id_field not in converted:
            found = _first_id(rule, item)
            if found is None:
                problems.left_out.append(
                    f"{where} (no {', '.join(rule.id_sources[:-1])} or {rule.id_sources[-1]})"
                )
                continue
            converted = {rule.id_field: found, **converted}
        built.append(converted)
    return built


def _first_id(rule: ArrayOf, item: dict[str, Any]) -> str | None:
    """The first of `rule.id_sources` the item has as text (names matched like any field)."""
    index = trait_index(item)
    for source in rule.id_sources:
        value = index.get(sanitize.trait_key(source))
        if value is not None:
            try:
                return text(value)
            except InvalidValue:
                continue
    return None


def build_fields(key: str, properties: dict[str, Any], problems: Problems) -> dict[str, Any]:
    """The closed-schema fields of a `purchase`/`refund` event."""
    return _convert(SCHEMAS[key], properties, "", problems)
