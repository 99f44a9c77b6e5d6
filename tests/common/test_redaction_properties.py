"""Property tests: no email address reaches a log line, wherever it sits in a value."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common import logs

local_parts = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}", fullmatch=True)
domains = st.from_regex(r"[a-z0-9-]{1,12}(\.[a-z0-9-]{1,12}){0,2}\.[a-z]{2,6}", fullmatch=True)
emails = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)
filler = st.text(st.characters(exclude_characters="@%"), max_size=20)


@st.composite
def texts_with_an_email(draw: st.DrawFn) -> tuple[str, str]:
    email = draw(emails)
    shown = draw(st.sampled_from([email, quote(email, safe="")]))
    separator = st.sampled_from([" ", "/", '"', "<", ":", ",", "="])
    text = draw(filler) + draw(separator) + shown + draw(separator) + draw(filler)
    return text, email


def nested(text: str) -> st.SearchStrategy:
    return st.recursive(
        st.just(text),
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3),
            st.dictionaries(st.sampled_from(["a", "email", "customFields"]), children, min_size=1),
        ),
        max_leaves=5,
    )


@given(texts_with_an_email())
def test_no_full_address_survives_in_a_text(case: tuple[str, str]) -> None:
    text, email = case
    redacted = logs.redact_emails(text)
    assert email not in redacted
    assert quote(email, safe="") not in redacted
    assert email.split("@")[1] in redacted, "the domain stays, to recognise the tenant's users"


@given(st.data())
def test_no_full_address_survives_at_any_depth(data: st.DataObject) -> None:
    text, email = data.draw(texts_with_an_email())
    value = data.draw(nested(text))
    assert email not in json.dumps(logs.redact_emails(value), ensure_ascii=False)


@given(st.text(st.characters(exclude_characters="@%"), max_size=200))
def test_text_without_an_address_is_left_alone(text: str) -> None:
    assert logs.redact_emails(text) == text


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)


def leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    return [value]


@given(JSON_VALUES.filter(lambda value: "events" not in json.dumps(value)))
def test_a_shape_keeps_names_and_shows_no_value(value: object) -> None:
    """What the dry run logs of a body: every value is a type and size."""
    for leaf in leaves(logs.shape(value)):
        assert leaf is None or re.fullmatch(r"str\(\d+\)|number|bool", str(leaf)), leaf


def test_only_an_events_key_is_shown_as_it_is() -> None:
    body = {"key": "secret", "events": [{"key": "purchase", "fields": {"key": "k-1"}}]}
    assert logs.shape(body) == {
        "key": "str(6)",
        "events": [{"key": "purchase", "fields": {"key": "str(3)"}}],
    }


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("user 203.0.113.7 is blocked", "203.0.113.7"),
        ("from 2001:db8::8a2e:370:7334 denied", "2001:db8::8a2e:370:7334"),
        ("invalid key sk_live_51HqLyjWDarjtT1zdp7dc", "sk_live_51HqLyjWDarjtT1zdp7dc"),
        ("tenant key TEST_sq_5e1f0c7a9b rejected", "TEST_sq_5e1f0c7a9b"),
        ("header Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ("token 4f9c2b8e1d7a6c5b3e2f1a0d9c8b7a6e5d4c3b2a", "4f9c2b8e1d7a6c5b3e2f1a0d9c8b7a6e"),
    ],
)
def test_saasquatch_error_text_is_logged_without_ips_or_keys(text: str, secret: str) -> None:
    assert secret not in logs.redact(text)


def test_ordinary_error_text_is_kept() -> None:
    text = "Invalid value for field order_id: expected a string, version 1.2.3, 2026-11-29"
    assert logs.redact(text) == text
