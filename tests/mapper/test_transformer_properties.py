"""For any JSON message, the transformer path ends in a plan: never an exception out of the
mapper, and what it sends still satisfies SaaSquatch's rules."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mapper import MappingOptions, plan_message
from mapper.options import parse_track_upsert_strategy
from mapper.segments import InvalidSegmentsStrategy
from mapper.transformers import Transformer

from ..factories import NOW
from ..support.examples import examples
from ..support.saasquatch_rules import check_events, check_upsert
from ..support.strategies import LARGE_INPUTS, any_text, json_values

# Expressions that hand the message's own values, of any shape, to every kind of result.
SEGMENTS = [
    '[traits.trait2, "hardcoded"]',
    "traits.*",
    "traits",
    "$",
    "$keys(traits)",
]
STRATEGIES = [
    'event = "Order Completed" ? "ALWAYS" : "MISSING_USER"',
    "properties.strategy",
    "$string(properties.strategy)",
    "$lowercase(event)",
]
UPSERTS = [
    '{ "customFields": { "plan": properties.plan } }',
    "properties",
    '{"customFields": properties, "segments": properties.segments, "email": properties.email}',
    '{"locale": properties.locale, "referredByCodes": properties.codes, "firstName": event}',
    "$merge([properties, {}])",
]

options = st.builds(
    MappingOptions,
    identify_segments_transformer=st.sampled_from(SEGMENTS).map(
        lambda text: Transformer("IDENTIFY_SEGMENTS_TRANSFORMER", text)
    ),
    track_upsert_strategy=st.sampled_from(STRATEGIES).map(parse_track_upsert_strategy),
    track_upsert_transformer=st.sampled_from(UPSERTS).map(
        lambda text: Transformer("TRACK_UPSERT_TRANSFORMER", text)
    ),
    invalid_segments_strategy=st.sampled_from(list(InvalidSegmentsStrategy)),
)

loose_objects = st.dictionaries(
    st.sampled_from(["trait2", "plan", "strategy", "segments", "email", "locale", "codes"])
    | any_text,
    json_values
    | st.sampled_from(["ALWAYS", "never", "Missing_User", "vip", "~*", "VIP Tier!"])
    | st.lists(st.sampled_from(["vip", "~vip", "~*", "VIP Tier!", "", "~"])),
    max_size=8,
)

messages = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["identify", "track"]),
        "userId": st.sampled_from(["u-1", "user@example.com"]) | any_text,
    },
    optional={
        "event": st.sampled_from(["Order Completed", "Signed Up"]) | json_values,
        "messageId": any_text,
        "traits": loose_objects | json_values,
        "properties": loose_objects | json_values,
        "context": st.fixed_dictionaries({}, optional={"traits": loose_objects}),
    },
)


@settings(max_examples=examples(300), suppress_health_check=LARGE_INPUTS, deadline=None)
@given(messages, options)
def test_the_transformer_path_never_raises_out_of_the_mapper(
    message: dict[str, Any], options: MappingOptions
) -> None:
    before = repr(message)
    plan = plan_message(message, options, now=NOW)  # no outer catch: a bug raises here
    assert repr(message) == before  # the expressions do not change the message
    assert plan.reason is None or plan.reason.outcome is plan.outcome
    assert plan.reason != "mapping_error"
    for call in (*plan.calls, plan.upsert_on_missing_user):
        if call is None or call.body is None:
            continue
        if call.method == "PUT":
            check_upsert(call.body)
        else:
            check_events(call.body)
