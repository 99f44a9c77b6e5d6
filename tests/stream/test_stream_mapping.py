"""Each webhook type becomes its exact Segment call; tests, unknown types and broken webhooks
end with their reasons, and the mapper never raises."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.outcomes import Outcome, Reason
from stream import LIBRARY, STREAMS, StreamOptions, map_webhook, message_id

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
    "moderationStatus": "ACTIONED",
    "referrerModerationStatus": "APPROVED",
    "referredModerationStatus": "PENDING",
    "dateReferralStarted": 1764600000000,
}


def test_user_created_is_an_identify_of_the_user_with_codes_and_custom_fields() -> None:
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
        "customFields": {"plan": "pro", "email": "not over the declared field"},
        "emailHash": "left out: not declared",
        "shareLinks": {"shareLink": "https://ssqt.co/x"},
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
            "createdAt": 1764600000000,
            "plan": "pro",
        },
        "timestamp": WHEN,
        "context": context("user.created"),
    }


@pytest.mark.parametrize(
    ("kind", "event"),
    [
        ("referral.started", "Referral Started"),
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
        "context": context(kind),
    }


def test_a_classic_referral_names_its_users_by_id_only() -> None:
    classic = {key: value for key, value in REFERRAL.items() if key not in ("referrer", "referred")}
    call = only_call(webhook("referral.converted", classic))
    assert call["userId"] == "classic-advocate"
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
            "dateGiven": 1764600000500,
        },
        "timestamp": WHEN,
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
        {"code": "FRIENDS15", "programId": "friends", "dateCreated": 1764600000100},
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
