"""identify -> SaaSquatch user upsert (standard fields, custom fields, end-user headers)."""

from __future__ import annotations

import contextlib
import ipaddress
import re
from typing import Any, cast

from saasquatch.calls import Call, Purpose, UserUpsert, compact, user_path

from . import sanitize
from .notes import Notes
from .plan import Account
from .rules import Derived, Field, Table
from .segment import SegmentMessage

MAX_CUSTOM_FIELDS = 100
HEADER_MAX = 512


def text_value(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return sanitize.cut_chars(value, sanitize.CUSTOM_FIELD_CHARS) if value else None
    return sanitize.id_text(value)


def _first_word(name: Any) -> str | None:
    return name.split(None, 1)[0] if isinstance(name, str) and name.strip() else None


def _after_first_word(name: Any) -> str | None:
    parts = name.split(None, 1) if isinstance(name, str) else []
    return parts[1].strip() if len(parts) == 2 else None


def code_list(value: Any) -> list[str] | None:
    values = value if isinstance(value, list) else [value]
    codes = [code for code in map(text_value, values) if code]
    return codes or None


# SaaSquatch user field -> the reserved trait it comes from (run by `rules.Table.read`).
STANDARD_TRAITS = Table(
    {
        "email": Field(text_value),
        "firstName": Field(text_value, fallback=Derived("name", _first_word)),
        "lastName": Field(text_value, fallback=Derived("name", _after_first_word)),
        "imageUrl": Field(text_value, source="avatar"),
        "referredByCodes": Field(code_list),
    }
)

# Traits that never become custom fields because they are used elsewhere: the standard fields
# above and the identity (`id`, the account).
CONSUMED_TRAITS = STANDARD_TRAITS.keys | frozenset(
    sanitize.trait_key(name) for name in ("accountId", "id")
)
# Segment's reserved traits that SaaSquatch has no field for: left out, and noted as such.
UNSENT_TRAITS = frozenset(sanitize.trait_key(name) for name in ("address", "birthday", "createdAt"))

# Fields SaaSquatch computes itself; writing them is refused or clobbers its data. Matched like
# reserved traits, so `total_purchase_count` is kept out too.
SYSTEM_FIELDS = frozenset(
    sanitize.trait_key(name)
    for name in ("lastPurchaseDate", "firstPurchaseDate", "lastSeenDate", "totalPurchaseCount")
)


def standard_fields(traits: dict[str, Any]) -> dict[str, Any]:
    """The standard user fields; every other trait is for `custom_fields`, so nothing is noted."""
    return STANDARD_TRAITS.read(traits, None)


_DROP = object()


def custom_field_value(value: Any) -> Any:
    """Scalars pass (strings cut to 1024), objects/arrays become compact JSON; else `_DROP`."""
    if value is None or isinstance(value, bool) or sanitize.is_number(value):
        return value
    if isinstance(value, str):
        return sanitize.cut_chars(value, sanitize.CUSTOM_FIELD_CHARS)
    if isinstance(value, dict | list):
        try:
            text = sanitize.compact_json(value)
        except (ValueError, RecursionError):
            return _DROP
        return sanitize.cut_chars(text, sanitize.CUSTOM_FIELD_CHARS)
    return _DROP


def custom_fields(traits: dict[str, Any], notes: Notes) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    dropped: list[str] = []
    overflow: list[str] = []
    for raw_name, raw_value in traits.items():
        key = sanitize.trait_key(raw_name)
        if key in CONSUMED_TRAITS:
            continue
        if key in UNSENT_TRAITS:
            dropped.append(raw_name)
            continue
        name = sanitize.field_name(raw_name)
        if name is None or sanitize.trait_key(name) in SYSTEM_FIELDS:
            dropped.append(raw_name)
            continue
        if name in fields:
            dropped.append(raw_name)  # an earlier trait already sanitised to this name
            continue
        value = custom_field_value(raw_value)
        if value is _DROP:
            dropped.append(raw_name)
            continue
        if len(fields) == MAX_CUSTOM_FIELDS:
            overflow.append(raw_name)
            continue
        fields[name] = value
    if dropped:
        notes.add("traits left out", *map(_loggable, dropped))
    if overflow:
        heading = f"custom fields over {MAX_CUSTOM_FIELDS} left out ({len(overflow)})"
        notes.add(heading, *map(_loggable, overflow))
    return fields


def _loggable(name: str) -> str:
    return sanitize.cut_chars(name, 64)


_PRINTABLE = re.compile(r"[^\x20-\x7e]")


def end_user_headers(message: SegmentMessage) -> dict[str, str]:
    """The end user's IP and user agent, so SaaSquatch's fraud checks see the real visitor."""
    headers: dict[str, str] = {}
    ip = message.context.ip
    if isinstance(ip, str):
        with contextlib.suppress(ValueError):
            headers["X-Forwarded-For"] = str(ipaddress.ip_address(ip.strip()))
    agent = message.context.userAgent
    if isinstance(agent, str):
        agent = _PRINTABLE.sub("", agent).strip()[:HEADER_MAX]
        if agent:
            headers["User-Agent"] = agent
    return headers


def upsert_call(
    message: SegmentMessage,
    user: str,
    account: Account,
    traits: dict[str, Any],
    notes: Notes | None = None,
    transformed: dict[str, Any] | None = None,
    cookies: str | None = None,
) -> Call:
    """The upsert for `user` in `account`; custom fields only when `notes` is given (identify,
    not track). `transformed` (fields a transformer gave, already checked) wins over the
    standard ones. `cookies` is the referral cookie, already checked (`mapper.cookies`): sent
    beside `referredByCodes`, which SaaSquatch applies first."""
    fields = standard_fields(traits)
    user_locale = sanitize.locale(message.context.locale)
    if user_locale is not None:
        fields["locale"] = user_locale
    if notes is not None:
        extra = custom_fields(traits, notes)
        if extra:
            fields["customFields"] = extra
    if transformed:
        fields.update(transformed)
    if cookies is not None:
        fields["cookies"] = cookies
    body = cast(UserUpsert, {"id": user, "accountId": account.id, **fields})
    return Call(
        Purpose.UPSERT_USER,
        "PUT",
        user_path(account.id, user),
        body=compact(dict(body)),
        headers=end_user_headers(message),
    )
