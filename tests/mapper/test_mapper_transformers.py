"""The hosted v2 options: JSONata transformers (identify segments, a track's upsert and its
strategy) and the invalid-segments strategies, through the pure mapper."""

from __future__ import annotations

from typing import Any

import pytest

from common.outcomes import Outcome, Reason
from mapper import MappingOptions, Plan, TrackUpsertStrategy, map_message
from mapper.notes import Notes
from mapper.options import parse_track_upsert_strategy
from mapper.segments import InvalidSegmentsStrategy, checked_segments, is_valid
from mapper.transformers import Transformer, TransformerSyntaxError

from ..factories import NOW

# The examples of SaaSquatch's "Segment v2 Subscription" page.
SEGMENTS_EXAMPLE = '[traits.trait2, "hardcoded"]'
STRATEGY_EXAMPLE = 'event = "Order Completed" ? "ALWAYS" : "MISSING_USER"'
UPSERT_EXAMPLE = '{ "customFields": { "plan": properties.plan } }'


def identify_segments(expression: str, **options: Any) -> MappingOptions:
    return MappingOptions(
        identify_segments_transformer=Transformer("IDENTIFY_SEGMENTS_TRANSFORMER", expression),
        **options,
    )


def track_upsert(expression: str, **options: Any) -> MappingOptions:
    return MappingOptions(
        track_upsert_transformer=Transformer("TRACK_UPSERT_TRANSFORMER", expression), **options
    )


def identify(**traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": "u-1", "messageId": "m-ident-1", "traits": traits}


def track(event: str = "Signed Up", **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": "u-1",
        "event": event,
        "messageId": "m-track-0001",
        "timestamp": "2026-11-29T11:00:00Z",
        "context": {"traits": {"email": "u1@example.com"}},
        "properties": properties,
    }


def mapped(message: dict[str, Any], options: MappingOptions) -> Plan:
    return map_message(message, options, now=NOW)


def upsert_body(plan: Plan) -> dict[str, Any]:
    [upsert] = [call for call in plan.calls if call.method == "PUT"]
    assert upsert.body is not None
    return upsert.body


# --- the docs' three examples ---------------------------------------------------------------------


def test_the_identify_segments_example_puts_the_user_in_test_and_hardcoded() -> None:
    plan = mapped(identify(trait2="test"), identify_segments(SEGMENTS_EXAMPLE))
    assert plan.outcome is Outcome.DELIVERED
    assert upsert_body(plan) == {
        "id": "u-1",
        "accountId": "u-1",
        "customFields": {"trait2": "test"},
        "segments": ["test", "hardcoded"],
    }


def test_without_the_trait_the_segments_example_gives_the_hardcoded_one_only() -> None:
    plan = mapped(identify(), identify_segments(SEGMENTS_EXAMPLE))
    assert upsert_body(plan)["segments"] == ["hardcoded"]


def test_segments_are_sent_only_when_a_transformer_gives_some() -> None:
    assert "segments" not in upsert_body(mapped(identify(trait2="test"), MappingOptions()))
    assert "segments" not in upsert_body(mapped(identify(), identify_segments("traits.nothing")))


@pytest.mark.parametrize(
    ("event", "strategy"),
    [
        ("Order Completed", TrackUpsertStrategy.ALWAYS),
        ("Signed Up", TrackUpsertStrategy.MISSING_USER),
    ],
)
def test_the_strategy_example_chooses_per_event(event: str, strategy: TrackUpsertStrategy) -> None:
    options = MappingOptions(track_upsert_strategy=parse_track_upsert_strategy(STRATEGY_EXAMPLE))
    plan = mapped(track(event, order_id="o-1", total=5), options)
    assert plan.outcome is Outcome.DELIVERED
    purposes = [call.purpose for call in plan.calls]
    if strategy is TrackUpsertStrategy.ALWAYS:
        assert purposes == ["upsert_user", "track_event"]
        assert plan.upsert_on_missing_user is None
    else:
        assert purposes == ["track_event"]
        assert plan.upsert_on_missing_user is not None


@pytest.mark.parametrize("value", ['"never"', '"Never"', '" NEVER "'])
def test_a_strategy_expression_may_give_any_case(value: str) -> None:
    options = MappingOptions(track_upsert_strategy=parse_track_upsert_strategy(value))
    plan = mapped(track(), options)
    assert [call.purpose for call in plan.calls] == ["track_event"]
    assert plan.upsert_on_missing_user is None


@pytest.mark.parametrize("value", ['"sometimes"', "42", "[]", "nothing"])
def test_a_strategy_expression_giving_no_strategy_is_an_invalid_result(value: str) -> None:
    options = MappingOptions(track_upsert_strategy=parse_track_upsert_strategy("(" + value + ")"))
    plan = mapped(track(), options)
    assert (plan.outcome, plan.reason) == (
        Outcome.DEAD_LETTERED,
        Reason.TRANSFORMER_INVALID_RESULT,
    )
    assert plan.detail == "TRACK_UPSERT_STRATEGY must give never, missing_user or always"


def test_the_upsert_example_sets_the_plan_custom_field_on_the_tracks_upsert() -> None:
    options = track_upsert(UPSERT_EXAMPLE, track_upsert_strategy=TrackUpsertStrategy.ALWAYS)
    plan = mapped(track(plan="pro"), options)
    assert upsert_body(plan) == {
        "id": "u-1",
        "accountId": "u-1",
        "email": "u1@example.com",
        "customFields": {"plan": "pro"},
    }
    # The event itself is unchanged by the transformer.
    assert plan.calls[1].body["events"][0]["fields"] == {"plan": "pro"}


def test_the_upsert_transformer_also_shapes_the_missing_user_fallback() -> None:
    plan = mapped(track(plan="pro"), track_upsert(UPSERT_EXAMPLE))
    assert plan.upsert_on_missing_user is not None
    assert plan.upsert_on_missing_user.body["customFields"] == {"plan": "pro"}


def test_with_never_the_upsert_transformer_is_not_evaluated() -> None:
    options = track_upsert('$error("boom")', track_upsert_strategy=TrackUpsertStrategy.NEVER)
    plan = mapped(track(), options)
    assert plan.outcome is Outcome.DELIVERED
    assert [call.purpose for call in plan.calls] == ["track_event"]


# --- merging with the standard fields -------------------------------------------------------------


def test_the_transformer_wins_where_both_set_a_field_and_its_values_are_sanitised() -> None:
    expression = """{
        "email": "from-the-transformer@example.com",
        "firstName": "  Ada  ",
        "locale": "fr-CA",
        "referredByCodes": "CODE1",
        "customFields": {"plan": properties.plan, "bad name!": 1, "nested": {"a": [1]}},
        "segments": ["~*", "Gold", "Gold Tier!"]
    }"""
    options = track_upsert(expression, track_upsert_strategy=TrackUpsertStrategy.ALWAYS)
    plan = mapped(track(plan="pro"), options)
    assert upsert_body(plan) == {
        "id": "u-1",
        "accountId": "u-1",
        "email": "from-the-transformer@example.com",
        "firstName": "Ada",
        "locale": "fr_CA",
        "referredByCodes": ["CODE1"],
        "customFields": {"plan": "pro", "badname": 1, "nested": '{"a":[1]}'},
        "segments": ["~*", "Gold"],
    }
    assert "segments left out: 1 invalid" in plan.notes


def test_null_fields_of_a_result_are_left_as_the_standard_ones() -> None:
    options = track_upsert('{"email": missing}', track_upsert_strategy=TrackUpsertStrategy.ALWAYS)
    assert upsert_body(mapped(track(), options))["email"] == "u1@example.com"


@pytest.mark.parametrize(
    ("expression", "detail"),
    [
        ('{"id": "someone-else"}', "gives fields the user upsert does not take: id"),
        (
            '{"plan": 1, "accountId": "x"}',
            "gives fields the user upsert does not take: accountId, plan",
        ),
        ('"pro"', "must give an object of user upsert fields"),
        ("[1, 2]", "must give an object of user upsert fields"),
        ('{"customFields": "pro"}', "gives customFields that is not an object"),
        ('{"email": {"a": 1}}', "gives email that is not text"),
        ('{"segments": [{"name": "vip"}]}', "must give segment names (strings)"),
    ],
)
def test_a_result_of_the_wrong_shape_is_a_dead_letter_naming_the_setting(
    expression: str, detail: str
) -> None:
    options = track_upsert(expression, track_upsert_strategy=TrackUpsertStrategy.ALWAYS)
    plan = mapped(track(), options)
    assert (plan.outcome, plan.reason) == (
        Outcome.DEAD_LETTERED,
        Reason.TRANSFORMER_INVALID_RESULT,
    )
    assert plan.detail is not None and plan.detail.startswith("TRACK_UPSERT_TRANSFORMER ")
    assert plan.detail.endswith(detail)
    assert plan.message_type == "track"


@pytest.mark.parametrize(
    ("expression", "code"),
    [
        ('$error("nope")', "D3137"),
        ('$sum("a")', "T0412"),
        ('traits.a + "x"', "T2002"),
    ],
)
def test_an_expression_that_fails_is_a_dead_letter_with_jsonatas_code(
    expression: str, code: str
) -> None:
    plan = mapped(identify(a=1), identify_segments(expression))
    assert (plan.outcome, plan.reason) == (Outcome.DEAD_LETTERED, Reason.TRANSFORMER_FAILED)
    assert plan.detail == f"IDENTIFY_SEGMENTS_TRANSFORMER failed (JSONata {code})"


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ('$number("not a number")', "failed in $number (JSONata D3030)"),
        ('$toMillis("not a date")', "failed in $toMillis (JSONata D3110)"),
        (
            '$parseInteger("x", "#")',
            "failed (jsonata-python raised RuntimeError in parse_integer)",
        ),
    ],
)
def test_a_python_exception_out_of_the_library_is_a_failure_with_jsonatas_code(
    expression: str, said: str
) -> None:
    """jsonata-python 0.7 lets some functions raise Python's own exceptions where JSONata
    raises a coded error (`$number("twelve")`: ValueError, where JSONata says D3030); the
    detail gives JSONata's code when the function is known, else the function."""
    plan = mapped(identify(), identify_segments(expression))
    assert (plan.outcome, plan.reason) == (Outcome.DEAD_LETTERED, Reason.TRANSFORMER_FAILED)
    assert plan.detail == f"IDENTIFY_SEGMENTS_TRANSFORMER {said}"


def test_a_failure_detail_carries_no_value_of_the_message() -> None:
    plan = mapped(identify(email="secret@example.com"), identify_segments("$error(traits.email)"))
    assert plan.reason is Reason.TRANSFORMER_FAILED
    assert "secret" not in repr(plan.to_json())


# --- segment names --------------------------------------------------------------------------------

NAMES = ["vip", "~vip", "~*", "VIP Tier!", "", "~"]


@pytest.mark.parametrize(
    ("strategy", "sent", "note"),
    [
        (InvalidSegmentsStrategy.DISCARD_INVALID, ["vip", "~vip", "~*"], "3 invalid"),
        (InvalidSegmentsStrategy.DISCARD_ALL, [], "all 6 (3 invalid)"),
        (
            InvalidSegmentsStrategy.SANITIZE,
            ["vip", "~vip", "~*", "VIPTier"],
            "sanitized: 3 invalid, 2 left out",
        ),
    ],
)
def test_each_strategy_on_valid_and_invalid_names(
    strategy: InvalidSegmentsStrategy, sent: list[str], note: str
) -> None:
    notes = Notes()
    assert checked_segments(NAMES, strategy, notes) == sent
    [written] = notes.lines()
    assert written.endswith(note)
    assert "VIP" not in written  # counts, never names (they come from traits)


@pytest.mark.parametrize("strategy", list(InvalidSegmentsStrategy))
def test_valid_names_pass_every_strategy_unchanged_and_in_order(
    strategy: InvalidSegmentsStrategy,
) -> None:
    notes = Notes()
    operations = ["~*", "Gold", "~Silver", "2024cohort"]
    assert checked_segments(operations, strategy, notes) == operations
    assert notes.lines() == ()


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("vip", True),
        ("~vip", True),
        ("~*", True),
        ("VIP2", True),
        ("VIP Tier!", False),
        ("", False),
        ("~", False),
        ("*", False),
        ("~~vip", False),
        ("vip~", False),
        ("vip_tier", False),
        ("vip-tier", False),
        ("vïp", False),
        ("vip\n", False),
    ],
)
def test_the_segment_name_rule(name: str, valid: bool) -> None:
    assert is_valid(name) is valid


def test_the_strategy_applies_to_identify_segments_through_the_mapper() -> None:
    expression = '["vip", "~vip", "~*", "VIP Tier!", "", "~"]'
    plans = {
        strategy: mapped(
            identify(), identify_segments(expression, invalid_segments_strategy=strategy)
        )
        for strategy in InvalidSegmentsStrategy
    }
    assert upsert_body(plans[InvalidSegmentsStrategy.DISCARD_INVALID])["segments"] == [
        "vip",
        "~vip",
        "~*",
    ]
    assert "segments" not in upsert_body(plans[InvalidSegmentsStrategy.DISCARD_ALL])
    assert upsert_body(plans[InvalidSegmentsStrategy.SANITIZE])["segments"] == [
        "vip",
        "~vip",
        "~*",
        "VIPTier",
    ]


def test_one_name_alone_and_whole_numbers_are_segment_names() -> None:
    assert upsert_body(mapped(identify(), identify_segments('"vip"')))["segments"] == ["vip"]
    assert upsert_body(mapped(identify(), identify_segments("[2024, 7]")))["segments"] == [
        "2024",
        "7",
    ]


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("never", TrackUpsertStrategy.NEVER),
        ("MISSING_USER", TrackUpsertStrategy.MISSING_USER),
        (" Always ", TrackUpsertStrategy.ALWAYS),
    ],
)
def test_a_strategy_name_in_any_case_is_the_strategy(
    text: str, expected: TrackUpsertStrategy
) -> None:
    assert parse_track_upsert_strategy(text) is expected


def test_a_bare_word_that_is_no_strategy_is_refused_not_compiled() -> None:
    with pytest.raises(ValueError, match="'sometimes' names no strategy"):
        parse_track_upsert_strategy("sometimes")


def test_an_expression_that_does_not_parse_names_the_setting_and_jsonatas_error() -> None:
    with pytest.raises(TransformerSyntaxError) as error:
        Transformer("TRACK_UPSERT_TRANSFORMER", '{ "customFields": ')
    assert str(error.value).startswith(
        "TRACK_UPSERT_TRANSFORMER: the JSONata expression does not parse: S0"
    )
    assert "\n" not in str(error.value)
