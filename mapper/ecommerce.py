"""`purchase` and `refund`: SaaSquatch's closed field schemas, declared one line per field.

The tables are run by `rules.Table.read`: Segment E-commerce v2 properties are looked up by name
ignoring case and `_ - space`, so `order_id`, `orderId` and `Order ID` all fill `order_id`.
Anything not in the table is left out and noted.
"""

from __future__ import annotations

import math
import re
from typing import Any

from . import sanitize
from .rules import ArrayOf, Field, InvalidValue, Rule, Table

TEXT_MAX = 375
MAX_PRODUCTS = 200
_CURRENCY = re.compile(r"[A-Z]{3}")


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


PRODUCT_FIELDS = Table(
    {
        # SaaSquatch requires an id; Segment products sometimes carry only `id` or `sku`.
        "product_id": Field(text, also=("id", "sku")),
        "sku": Field(text),
        "category": Field(text),
        "name": Field(text),
        "brand": Field(text),
        "variant": Field(text),
        "coupon": Field(text),
        "url": Field(text),
        "image_url": Field(text),
        "price": Field(amount),
        "quantity": Field(count),
        "position": Field(integer),
    }
)

PRODUCTS = ArrayOf(PRODUCT_FIELDS, max_items=MAX_PRODUCTS, required="product_id")

_PURCHASE: dict[str, Rule] = {
    "checkout_id": Field(text),
    "order_id": Field(text),
    "affiliation": Field(text),
    "coupon": Field(text),
    "subtotal": Field(amount),
    "total": Field(amount),
    "revenue": Field(amount),
    "shipping": Field(amount),
    "tax": Field(amount),
    "discount": Field(amount),
    "currency": Field(currency),
    "products": PRODUCTS,
}
_REFUND = ("order_id", "affiliation", "total", "revenue", "shipping", "tax", "currency", "products")

SCHEMAS: dict[str, Table] = {
    "purchase": Table(_PURCHASE),
    "refund": Table({name: _PURCHASE[name] for name in _REFUND}),
}
