"""Segment refuses a message over 32 KB, so `fit` leaves optional fields out until it fits: the
custom fields, largest first, then the row's optional fields (share links, a reward's
redemptions and details, a referral's fraud signals), naming them in
`context.saasquatch.trimmedFields`. Measured by the Segment client's own encoding. Only a
message too large with all of them gone is a dead letter."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from common.outcomes import Outcome, Reason
from segment_api.client import MAX_MESSAGE_BYTES, encode, message_bytes
from stream import STREAMS, Forwarding, fit, map_webhook
from stream.mapping import TRIMMED_LISTED, optional_fields

from ..support.examples import examples

CREATED = 1764672000123


def user_created(custom: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {
        "id": "wh-big",
        "type": "user.created",
        "tenantAlias": "test_tenant",
        "live": True,
        "created": CREATED,
        "data": {
            "id": "u-1",
            "accountId": "a-1",
            "email": "big@example.com",
            "referralCode": "BIG",
            "dateCreated": CREATED,
            "customFields": custom,
            **data,
        },
    }


def fitted(hook: dict[str, Any], limit: int = MAX_MESSAGE_BYTES) -> Forwarding:
    return fit(map_webhook(hook), limit, message_bytes)


def test_a_user_of_100_custom_fields_of_1024_characters_fits_with_the_largest_left_out() -> None:
    """SaaSquatch allows 100 custom fields of 1,024 characters (its UserCustomFields schema);
    the whole user is three times Segment's limit."""
    custom = {f"field_{i:03}": chr(ord("a") + i % 26) * (1024 - i) for i in range(100)}
    untrimmed = map_webhook(user_created(custom)).calls[0]
    assert message_bytes(untrimmed) > 3 * MAX_MESSAGE_BYTES
    forwarding = fitted(user_created(custom))
    assert forwarding.outcome is Outcome.DELIVERED
    [call] = forwarding.calls
    assert message_bytes(call) <= MAX_MESSAGE_BYTES
    trimmed = call["context"]["saasquatch"]["trimmedFields"]
    assert trimmed == list(forwarding.trimmed)
    assert trimmed == [f"field_{i:03}" for i in range(len(trimmed))]  # the largest first
    kept = {name for name in custom if name not in trimmed}
    assert kept and {name for name in call["traits"] if name.startswith("field_")} == kept
    for name in ("email", "accountId", "referralCode", "createdAt"):
        assert call["traits"][name] == untrimmed["traits"][name]


def test_it_stops_as_soon_as_the_message_fits() -> None:
    custom = {f"f{i}": "x" * 1000 for i in range(40)}
    forwarding = fitted(user_created(custom))
    [call] = forwarding.calls
    size = message_bytes(call)
    assert size <= MAX_MESSAGE_BYTES
    # One field fewer trimmed would not have fitted.
    last = forwarding.trimmed[-1]
    back = copy.deepcopy(call)
    back["traits"][last] = custom[last]
    back["context"]["saasquatch"]["trimmedFields"].remove(last)
    back["context"]["saasquatch"]["trimmedCount"] -= 1
    assert message_bytes(back) > MAX_MESSAGE_BYTES


def test_thousands_of_small_custom_fields_fit_and_the_list_of_their_names_is_bounded() -> None:
    """Past SaaSquatch's 100 custom fields (a body of 1 MB can hold 10,000), the names of what
    was left out must not be what breaks the limit: at most 100 are listed, and counted."""
    custom = {f"{i:05}".ljust(64, "n"): "v" * 30 for i in range(10_000)}
    forwarding = fitted(user_created(custom))
    assert forwarding.outcome is Outcome.DELIVERED
    [call] = forwarding.calls
    assert message_bytes(call) <= MAX_MESSAGE_BYTES
    origin = call["context"]["saasquatch"]
    assert origin["trimmedCount"] == len(forwarding.trimmed) > TRIMMED_LISTED
    assert origin["trimmedFields"] == list(forwarding.trimmed[:TRIMMED_LISTED])


def test_a_message_that_fits_is_sent_as_mapped() -> None:
    hook = user_created({"plan": "pro"})
    assert fitted(hook) == map_webhook(hook)
    assert "trimmedFields" not in fitted(hook).calls[0]["context"]["saasquatch"]


def test_share_links_go_only_once_every_custom_field_is_gone() -> None:
    links = {f"program-{i}": {"cleanShareLink": "https://ssqt.co/" + "l" * 300} for i in range(60)}
    hook = user_created(
        {"small": "s", "large": "L" * 900},
        shareLinks={"shareLink": "https://ssqt.co/x"},
        programShareLinks=links,
    )
    forwarding = fitted(hook, limit=8_000)
    assert forwarding.trimmed == ("large", "small", "programShareLinks")
    assert forwarding.calls[0]["traits"]["shareLinks"] == {"shareLink": "https://ssqt.co/x"}


def test_a_message_too_large_with_nothing_optional_left_is_a_dead_letter() -> None:
    hook = {
        "id": "w-1",
        "type": "reward.created",
        "created": CREATED,
        "data": {"userId": "u", "name": "x" * 40_000, "rewardDetails": {"a": "b"}},
    }
    forwarding = fitted(hook)
    assert (forwarding.outcome, forwarding.reason, forwarding.calls) == (
        Outcome.DEAD_LETTERED,
        Reason.SEGMENT_MESSAGE_TOO_LARGE,
        (),
    )
    assert forwarding.detail is not None
    assert forwarding.detail.startswith("track of 40")
    assert forwarding.detail.endswith("even with every optional field left out")


def test_what_is_not_delivered_is_left_as_it_is() -> None:
    ignored = map_webhook({"id": "w", "type": "test", "data": {}})
    assert fit(ignored, MAX_MESSAGE_BYTES, message_bytes) is ignored


def test_it_measures_as_the_client_writes_a_lone_surrogate() -> None:
    """The client writes a lone surrogate as U+FFFD (3 bytes), as valid UTF-8, and the size
    fit measures is that of what is sent."""
    call = {"type": "track", "properties": {"name": "\ud800"}}
    assert encode(call) == '{"type":"track","properties":{"name":"\ufffd"}}'.encode()
    assert message_bytes(call) == len(encode(call))


# --- any message ---------------------------------------------------------------------------------

names = st.from_regex(r"[a-zA-Z0-9_]{1,64}", fullmatch=True)
# Custom field values as SaaSquatch allows them, long ones often, in 1 to 4 UTF-8 bytes each.
long_texts = st.builds(
    lambda char, count: char * count,
    st.sampled_from(["a", "é", "✓", "😀", '"']),
    st.integers(0, 1024),
)
values = st.one_of(long_texts, st.text(max_size=20), st.integers(), st.booleans())
links = st.dictionaries(
    st.from_regex(r"[a-z-]{1,20}", fullmatch=True),
    st.fixed_dictionaries({"cleanShareLink": st.text(max_size=400)}),
    max_size=30,
)


@settings(max_examples=examples(200), deadline=None)
@given(
    custom=st.integers(0, 100).flatmap(
        lambda count: st.dictionaries(names, values, min_size=count, max_size=count)
    ),
    program_links=links,
    email=st.one_of(st.text(max_size=40), long_texts.map(lambda text: text * 5)),
    limit=st.sampled_from([MAX_MESSAGE_BYTES, 16_384, 4_096]),
)
def test_any_fitted_message_is_within_the_limit_and_keeps_every_field_not_optional(
    custom: dict[str, Any], program_links: dict[str, Any], email: str, limit: int
) -> None:
    hook = user_created(custom, email=email, programShareLinks=program_links)
    [untrimmed] = map_webhook(hook).calls
    stream = STREAMS["user.created"]
    optional = set(optional_fields(untrimmed, stream, message_bytes))
    forwarding = fit(map_webhook(hook), limit, message_bytes)
    if forwarding.outcome is Outcome.DEAD_LETTERED:
        assert forwarding.reason is Reason.SEGMENT_MESSAGE_TOO_LARGE
        # Not even with every optional field gone (and named, as it would be).
        bare = {k: v for k, v in untrimmed["traits"].items() if k not in optional}
        origin = {
            **untrimmed["context"]["saasquatch"],
            "trimmedFields": sorted(optional)[:TRIMMED_LISTED],
            "trimmedCount": len(optional),
        }
        context = {**untrimmed["context"], "saasquatch": origin}
        assert message_bytes({**untrimmed, "traits": bare, "context": context}) > limit
        return
    [call] = forwarding.calls
    assert message_bytes(call) <= limit
    assert len(encode(call)) == message_bytes(call)
    kept = call["traits"]
    for name, value in untrimmed["traits"].items():
        if name not in optional:
            assert kept[name] == value, name
    left_out = [name for name in untrimmed["traits"] if name not in kept]
    assert sorted(left_out) == sorted(forwarding.trimmed)
    assert set(forwarding.trimmed) <= optional
    if forwarding.trimmed:
        origin = call["context"]["saasquatch"]
        assert origin["trimmedFields"] == list(forwarding.trimmed)[:TRIMMED_LISTED]
        assert origin["trimmedCount"] == len(forwarding.trimmed)
    else:
        assert call == untrimmed
    assert json.loads(encode(call))["userId"] == "u-1"
