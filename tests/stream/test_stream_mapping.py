"""Each webhook type becomes its exact Segment call (dates as ISO 8601, the hosted Stream's
event names unless renamed, the loop guard on every call); tests, unknown types and broken
webhooks end with their reasons, and the mapper never raises. SaaSquatch's own examples and
schemas are held to the table in test_stream_fields.py, the size limit in test_stream_fit.py."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.outcomes import Outcome, Reason
from stream import (
    INTEGRATIONS,
    LIBRARY,
    STREAMS,
    StreamOptions,
    check_event_names,
    map_webhook,
    message_id,
)

CREATED = 1764672000123  # 2025-12-02T10:40:00.123Z
WHEN = "2025-12-02T10:40:00.123Z"


def webhook(kind: str, data: dict[str, Any], webhook_id: str = "wh-0001") -> dict[str, Any]:
    return {
        "id": webhook_id,
        "type": kind,
        "tenantAlias": "test_tenant",
        "live": False,
        "created": CREATED,
        "data": data,
    }


def context(kind: str, webhook_id: str = "wh-0001") -> dict[str, Any]:
    return {
        "library": LIBRARY,
        "saasquatch": {
            "webhookId": webhook_id,
            "webhookType": kind,
            "tenantAlias": "test_tenant",
            "live": False,
        },
    }


def only_call(hook: dict[str, Any], options: StreamOptions | None = None) -> dict[str, Any]:
    forwarding = map_webhook(hook, options)
    assert forwarding.outcome is Outcome.DELIVERED, forwarding
    [call] = forwarding.calls
    return call


REFERRAL = {
    "id": "ref-77",
    "programId": "friends",
    "referrer": {"id": "advocate-1", "accountId": "acct-1"},
    "referred": {"id": "friend-2", "accountId": "acct-2"},
    "referrerUser": "classic-advocate",
    "referredUser": "classic-friend",
    "moderationStatus": "ACTIONED",
    "referrerModerationStatus": "APPROVED",
    "referredModerationStatus": "PENDING",
    "dateReferralStarted": 1764600000000,
    "dateConverted": None,
    "dateReferralEnded": None,
    "fraudSignals": None,
}
REFERRAL_PROPERTIES = {
    "referralId": "ref-77",
    "accountId": "acct-1",
    "programId": "friends",
    "referredUserId": "friend-2",
    "referredAccountId": "acct-2",
    "referrerUserId": "advocate-1",
    "referrerUser": "classic-advocate",
    "referredUser": "classic-friend",
    "moderationStatus": "ACTIONED",
    "referrerModerationStatus": "APPROVED",
    "referredModerationStatus": "PENDING",
    "dateReferralStarted": "2025-12-01T14:40:00.000Z",
}


def test_user_created_is_an_identify_of_the_user_with_codes_links_and_custom_fields() -> None:
    data = {
        "id": "u-42",
        "accountId": "a-42",
        "email": "ada@example.com",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "locale": "en_GB",
        "imageUrl": "https://example.com/ada.png",
        "referralCode": "ADALOVELACE",
        "referralCodes": {"friends": "ADALOVELACE", "partners": "ADA10"},
        "referable": True,
        "dateCreated": 1764600000000,
        "customFields": {"plan": "pro", "email": "not over the declared field", "gone": None},
        "emailHash": "left out: DROPPED says why",
        "shareLinks": {"shareLink": "https://ssqt.co/x"},
        "referredByCodes": ["BOB10"],
        "segments": [],
        "countryCode": "GB",
        "dateBlocked": None,
    }
    assert only_call(webhook("user.created", data)) == {
        "type": "identify",
        "messageId": "saasquatch-wh-0001",
        "userId": "u-42",
        "traits": {
            "accountId": "a-42",
            "email": "ada@example.com",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "locale": "en_GB",
            "avatar": "https://example.com/ada.png",
            "referralCode": "ADALOVELACE",
            "referralCodes": {"friends": "ADALOVELACE", "partners": "ADA10"},
            "referable": True,
            "referredByCodes": ["BOB10"],
            "segments": [],
            "countryCode": "GB",
            "createdAt": "2025-12-01T14:40:00.000Z",
            "shareLinks": {"shareLink": "https://ssqt.co/x"},
            "plan": "pro",
        },
        "timestamp": WHEN,
        "integrations": {"SaaSquatch": False, "SaaSquatch v2": False},
        "context": context("user.created"),
    }


@pytest.mark.parametrize(
    ("kind", "event"),
    [
        ("referral.started", "Referral Created"),
        ("referral.converted", "Referral Converted"),
        ("referral.ended", "Referral Ended"),
    ],
)
def test_referrals_are_tracked_for_the_referrer(kind: str, event: str) -> None:
    assert only_call(webhook(kind, REFERRAL)) == {
        "type": "track",
        "messageId": "saasquatch-wh-0001",
        "userId": "advocate-1",
        "event": event,
        "properties": REFERRAL_PROPERTIES,
        "timestamp": WHEN,
        "integrations": INTEGRATIONS,
        "context": context(kind),
    }


def test_a_classic_referral_names_its_users_by_id_only() -> None:
    classic = {key: value for key, value in REFERRAL.items() if key not in ("referrer", "referred")}
    call = only_call(webhook("referral.converted", classic))
    assert call["userId"] == "classic-advocate"
    assert call["properties"]["referrerUserId"] == call["properties"]["referrerUser"]
    assert call["properties"]["referredUserId"] == call["properties"]["referredUser"]
    assert call["properties"]["referredUserId"] == "classic-friend"


def test_reward_created_is_tracked_for_the_rewarded_user() -> None:
    data = {
        "id": "rw-9",
        "userId": "friend-2",
        "accountId": "acct-2",
        "type": "PCT_DISCOUNT",
        "discountPercent": 15,
        "unit": "%",
        "name": "Friend discount",
        "rewardSource": "REFERRED",
        "programId": "friends",
        "dateGiven": 1764600000500,
        "dateExpires": None,
        "cancellable": True,
    }
    assert only_call(webhook("reward.created", data)) == {
        "type": "track",
        "messageId": "saasquatch-wh-0001",
        "userId": "friend-2",
        "event": "Reward Created",
        "properties": {
            "rewardId": "rw-9",
            "accountId": "acct-2",
            "name": "Friend discount",
            "type": "PCT_DISCOUNT",
            "rewardSource": "REFERRED",
            "programId": "friends",
            "unit": "%",
            "discountPercent": 15,
            "cancellable": True,
            "dateGiven": "2025-12-01T14:40:00.500Z",
        },
        "timestamp": WHEN,
        "integrations": INTEGRATIONS,
        "context": context("reward.created"),
    }


def test_a_balance_change_carries_its_resource_version() -> None:
    data = {
        "userId": "advocate-1",
        "accountId": "acct-1",
        "unit": "CENTS",
        "availableValue": 2500,
        "resourceVersion": 1764600000999,
    }
    call = only_call(webhook("user.reward.balance.changed", data))
    assert (call["event"], call["userId"], call["properties"]) == (
        "Reward Balance Changed",
        "advocate-1",
        {
            "accountId": "acct-1",
            "unit": "CENTS",
            "availableValue": 2500,
            "resourceVersion": 1764600000999,
        },
    )


def test_a_coupon_for_no_user_is_the_tenants() -> None:
    data = {"code": "FRIENDS15", "programId": "friends", "dateCreated": 1764600000100}
    call = only_call(webhook("coupon.created", data))
    assert "userId" not in call
    assert (call["event"], call["anonymousId"], call["properties"]) == (
        "Coupon Created",
        "saasquatch-tenant-test_tenant",
        {"code": "FRIENDS15", "programId": "friends", "dateCreated": "2025-12-01T14:40:00.100Z"},
    )


def test_the_message_id_is_the_webhooks_so_a_retry_is_the_same_message() -> None:
    first = only_call(webhook("reward.created", {"userId": "u"}, "wh-retried"))
    retry = only_call(webhook("reward.created", {"userId": "u"}, "wh-retried"))
    assert first["messageId"] == retry["messageId"] == "saasquatch-wh-retried"


def test_a_long_webhook_id_gives_a_message_id_under_100_characters() -> None:
    long_id = "x" * 200
    assert len(message_id(long_id)) < 100
    assert message_id(long_id) == message_id(long_id) != message_id("y" * 200)


def test_test_and_unknown_types_are_ignored_with_their_reasons() -> None:
    assert map_webhook(webhook("test", {})).reason is Reason.TEST_WEBHOOK
    unknown = map_webhook(webhook("theme.publish.finished", {}))
    assert (unknown.outcome, unknown.reason) == (Outcome.IGNORED, Reason.WEBHOOK_NOT_FORWARDED)


def test_the_allow_list_leaves_other_types_out() -> None:
    options = StreamOptions(types=frozenset({"reward.created"}))
    skipped = map_webhook(webhook("user.created", {"id": "u"}), options)
    assert (skipped.reason, skipped.detail) == (
        Reason.WEBHOOK_NOT_FORWARDED,
        "not in FORWARD_WEBHOOK_TYPES",
    )
    assert only_call(webhook("reward.created", {"userId": "u"}), options)["userId"] == "u"


@pytest.mark.parametrize(
    ("hook", "says"),
    [
        (["not", "an", "object"], "a webhook must be a JSON object"),
        ({"type": "reward.created", "data": {"userId": "u"}}, "a webhook needs an `id`"),
        ({"id": "w", "type": "reward.created", "data": []}, "`data` must be an object"),
        (webhook("reward.created", {"accountId": "a"}), "no user id at data.userId"),
        (webhook("referral.started", {}), "no user id at data.referrer.id or data.referrerUser"),
    ],
)
def test_a_broken_webhook_is_a_dead_letter_naming_the_problem(hook: Any, says: str) -> None:
    forwarding = map_webhook(hook)
    assert (forwarding.outcome, forwarding.reason) == (
        Outcome.DEAD_LETTERED,
        Reason.INVALID_WEBHOOK,
    )
    assert forwarding.detail is not None and forwarding.detail.startswith(says)


def test_the_hosted_streams_names_are_the_defaults() -> None:
    """SaaSquatch's hosted Stream documents these three; the others keep our names."""
    names = {kind: stream.event or stream.call for kind, stream in STREAMS.items()}
    assert names == {
        "user.created": "identify",
        "referral.started": "Referral Created",
        "referral.converted": "Referral Converted",
        "referral.ended": "Referral Ended",
        "reward.created": "Reward Created",
        "user.reward.balance.changed": "Reward Balance Changed",
        "coupon.created": "Coupon Created",
    }


def test_event_names_rename_only_the_types_they_name() -> None:
    options = StreamOptions(event_names={"referral.started": "Referral Started"})
    assert only_call(webhook("referral.started", REFERRAL), options)["event"] == "Referral Started"
    converted = only_call(webhook("referral.converted", REFERRAL), options)
    assert converted["event"] == "Referral Converted"


@pytest.mark.parametrize(
    ("names", "says"),
    [
        (["referral.started"], "must be a JSON object"),
        ({"user.deleted": "X"}, "user.deleted has no Segment call; renamable: referral.started"),
        ({"user.created": "User Created"}, "user.created becomes an identify"),
        ({"reward.created": ""}, "the name for reward.created must be a non-empty string"),
        ({"reward.created": "  "}, "must be a non-empty string"),
        ({"reward.created": 7}, "must be a non-empty string"),
        ({"reward.created": "x" * 201}, "of at most 200 characters"),
    ],
)
def test_wrong_event_names_say_what_is_wrong(names: Any, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        check_event_names(names)


def test_an_event_name_of_200_characters_is_taken() -> None:
    assert check_event_names({"reward.created": "x" * 200}) == {"reward.created": "x" * 200}


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (1570129308430, "2019-10-03T19:01:48.430Z"),  # SaaSquatch's RewardCreated example
        (0, "1970-01-01T00:00:00.000Z"),
        (1570129308430.0, "2019-10-03T19:01:48.430Z"),
        ("2019-10-03", "2019-10-03"),  # not epoch milliseconds: as sent, not lost
        (10**20, 10**20),  # past the calendar: as sent
        (True, True),
    ],
)
def test_dates_go_as_iso_8601_utc_with_milliseconds(sent: Any, expected: Any) -> None:
    call = only_call(webhook("reward.created", {"userId": "u", "dateExpires": sent}))
    assert call["properties"]["dateExpires"] == expected


def test_a_null_is_left_out_not_sent_as_null() -> None:
    data = {"userId": "u", "dateCancelled": None, "cancellable": False, "name": None}
    assert only_call(webhook("reward.created", data))["properties"] == {"cancellable": False}


def test_dates_inside_a_list_are_dates_too() -> None:
    redemption = {"id": "rd-1", "dateRedeemed": 1570129308430, "quantityRedeemed": "5"}
    call = only_call(webhook("reward.created", {"userId": "u", "redemptions": [redemption]}))
    assert call["properties"]["redemptions"] == [
        {"id": "rd-1", "dateRedeemed": "2019-10-03T19:01:48.430Z", "quantityRedeemed": "5"}
    ]


def test_every_declared_type_has_an_event_name_or_is_an_identify() -> None:
    for kind, stream in STREAMS.items():
        assert (stream.call == "identify") == (stream.event is None), kind


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(
    kind=st.sampled_from([*STREAMS, "test", "other"]),
    data=JSON,
    created=JSON,
    webhook_id=JSON,
)
def test_any_webhook_ends_in_a_forwarding_and_never_raises(
    kind: str, data: Any, created: Any, webhook_id: Any
) -> None:
    forwarding = map_webhook({"id": webhook_id, "type": kind, "created": created, "data": data})
    assert forwarding.outcome in (Outcome.DELIVERED, Outcome.IGNORED, Outcome.DEAD_LETTERED)
    assert forwarding.reason is not Reason.MAPPING_ERROR
    for call in forwarding.calls:
        assert len(call["messageId"]) < 100
        assert ("userId" in call) != ("anonymousId" in call)
        assert call["integrations"] == {"SaaSquatch": False, "SaaSquatch v2": False}
