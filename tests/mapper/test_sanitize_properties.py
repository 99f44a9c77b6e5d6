"""Property tests for the sanitising rules and the mapper's promise never to raise."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common import text
from common.outcomes import Outcome, Reason
from mapper import MappingOptions, map_message, plan_message, sanitize
from mapper import track as mapper_track
from saasquatch.calls import Purpose

from ..factories import NOW
from ..support.examples import examples
from ..support.saasquatch_rules import check_events, check_upsert
from ..support.strategies import LARGE_INPUTS, any_text, json_values, long_text

FIELD_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
EVENT_KEY = re.compile(r"[A-Za-z0-9]{1,64}")

strategies = st.builds(
    MappingOptions,
    track_upsert_strategy=st.sampled_from(["missing_user", "always", "never"]),
    invalid_data_strategy=st.sampled_from(["stringify_field", "null_field", "discard_event"]),
    remap_order_completed=st.booleans(),
    honor_delete=st.booleans(),
)


@given(any_text)
def test_sanitised_names_match_the_rule_or_are_dropped(name: str) -> None:
    cleaned = sanitize.field_name(name)
    assert cleaned is None or FIELD_NAME.fullmatch(cleaned)
    if cleaned is None:
        assert not re.search(r"[A-Za-z0-9_]", name)


@given(any_text)
def test_event_keys_match_the_rule_or_are_none(name: str) -> None:
    key = sanitize.event_key(name)
    assert key is None or EVENT_KEY.fullmatch(key)


@given(any_text)
def test_a_track_either_has_a_valid_key_or_is_dead_lettered(name: str) -> None:
    plan = map_message({"type": "track", "userId": "u", "event": name}, now=NOW)
    if plan.outcome is Outcome.DELIVERED:
        assert plan.event_key is not None and EVENT_KEY.fullmatch(plan.event_key)
    else:
        assert plan.outcome is Outcome.DEAD_LETTERED
        assert plan.reason in {"invalid_event_key", "missing_event_name"}


@given(long_text, st.integers(min_value=1, max_value=2000))
def test_byte_cut_respects_the_limit_and_keeps_a_prefix(value: str, limit: int) -> None:
    cut = text.cut_bytes(value, limit)
    encoded = cut.encode("utf-8")  # never raises: lone surrogates are replaced
    assert len(encoded) <= limit
    clean = text.valid_text(value)
    assert clean.startswith(cut)
    if len(clean.encode("utf-8")) > limit:
        assert len(encoded) > limit - 4, "cut at most one character short of the limit"


@given(long_text, st.integers(min_value=1, max_value=2000))
def test_char_cut_respects_the_limit(value: str, limit: int) -> None:
    assert len(text.cut_chars(value, limit)) <= limit


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


@settings(max_examples=examples(150), suppress_health_check=LARGE_INPUTS)
@given(st.dictionaries(any_text, json_values, max_size=120), strategies)
def test_identify_bodies_always_satisfy_saasquatch(
    traits: dict[str, Any], options: MappingOptions
) -> None:
    plan = map_message({"type": "identify", "userId": "u-1", "traits": traits}, options, now=NOW)
    assert plan.outcome is Outcome.DELIVERED, plan
    body = plan.calls[0].body
    assert body is not None
    check_upsert(body)
    for value in body.get("customFields", {}).values():
        assert not isinstance(value, str) or len(value) <= 1024


@settings(max_examples=examples(150), suppress_health_check=LARGE_INPUTS)
@given(
    st.sampled_from(["Order Completed", "Order Refunded", "Signed Up", "Checkout Started"]),
    st.dictionaries(
        st.sampled_from(
            [
                "order_id",
                "orderId",
                "total",
                "revenue",
                "tax",
                "currency",
                "coupon",
                "products",
                "x y",
            ]
        )
        | any_text,
        json_values
        | st.lists(
            st.dictionaries(
                st.sampled_from(
                    ["product_id", "id", "sku", "price", "quantity", "position", "name"]
                ),
                json_values,
            ),
            max_size=4,
        ),
        max_size=12,
    ),
    strategies,
)
def test_every_event_body_satisfies_saasquatch(
    event: str, properties: dict[str, Any], options: MappingOptions
) -> None:
    message = {"type": "track", "userId": "u-1", "event": event, "properties": properties}
    plan = map_message(message, options, now=NOW)
    if plan.outcome is Outcome.DEAD_LETTERED:
        assert plan.reason == "invalid_event_data"
        assert options.invalid_data_strategy == "discard_event"
        return
    for call in plan.calls:
        assert call.body is not None
        if call.purpose is Purpose.TRACK_EVENT:
            check_events(call.body)
        else:
            check_upsert(call.body)
    for value in _strings(plan.calls[-1].body):
        assert len(value.encode("utf-8")) <= 1500


@settings(max_examples=examples(300), suppress_health_check=LARGE_INPUTS)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["identify", "track", "page", "delete", "alias"]) | json_values,
            "userId": st.one_of(any_text, st.integers(), json_values),
            "event": json_values,
            "messageId": json_values,
            "traits": json_values,
            "properties": json_values,
            "context": st.dictionaries(
                st.sampled_from(["traits", "ip", "locale", "userAgent"]) | any_text, json_values
            )
            | json_values,
            "integrations": json_values,
            "timestamp": json_values | st.datetimes().map(lambda d: d.isoformat()),
        },
    ).flatmap(
        lambda fixed: st.dictionaries(any_text, json_values, max_size=3).map(
            lambda extra: {**extra, **fixed}
        )
    ),
    strategies,
)
def test_mapping_never_raises_and_never_hits_an_internal_error(
    message: dict[str, Any], options: MappingOptions
) -> None:
    # `plan_message` has no outer catch: a bug raises here instead of hiding as a dead letter.
    plan = plan_message(message, options, now=NOW)
    assert plan.reason is None or plan.reason.outcome is plan.outcome, plan
    if plan.outcome is Outcome.DELIVERED:
        assert plan.calls
    else:
        assert plan.reason and not plan.calls


@given(json_values)
def test_mapping_never_raises_on_any_json_value(value: Any) -> None:
    plan = plan_message(value, now=NOW)
    assert plan.outcome is not Outcome.DELIVERED or plan.calls


def test_a_bug_inside_the_mapper_is_a_mapping_error_dead_letter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The outer net `map_message` adds over `plan_message`, shown to catch."""

    def broken(*_args: Any) -> Any:
        raise KeyError("bug")

    monkeypatch.setattr(mapper_track, "event_fields", broken)
    message = {"type": "track", "userId": "u", "event": "Signed Up"}
    with pytest.raises(KeyError):
        plan_message(message, now=NOW)
    plan = map_message(message, now=NOW)
    assert (plan.outcome, plan.reason, plan.detail) == (
        Outcome.DEAD_LETTERED,
        Reason.MAPPING_ERROR,
        "KeyError",
    )
