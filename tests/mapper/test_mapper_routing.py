"""Which messages are delivered, ignored or dead-lettered, before any field is mapped."""

from __future__ import annotations

from typing import Any

import pytest

from common.outcomes import Outcome
from mapper import MappingOptions, map_message
from saasquatch.calls import Purpose

from ..factories import NOW, plan_for


def message(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "userId": "u-1", "messageId": "msg-00000001", **extra}


@pytest.mark.parametrize("kind", ["page", "screen", "group", "alias"])
def test_page_screen_group_alias_are_ignored_by_design(kind: str) -> None:
    plan = plan_for(message(kind, name="Home", groupId="g", previousId="p"))
    assert (plan.outcome, plan.reason, plan.calls) == (Outcome.IGNORED, "unsupported_type", ())


@pytest.mark.parametrize("kind", ["purchase", "Identify", "", None])
def test_unknown_or_missing_type_is_dead_lettered(kind: Any) -> None:
    body = message("x")
    body["type"] = kind
    plan = plan_for(body)
    assert (plan.outcome, plan.reason) == (Outcome.DEAD_LETTERED, "unknown_type")


@pytest.mark.parametrize(
    "integrations",
    [
        {"SaaSquatch": False},
        {"saasquatch": False},
        {"SaaSquatch v2": False},
        {"All": True, "SAASQUATCH": False},
    ],
)
def test_integrations_switching_saasquatch_off_is_ignored(integrations: dict[str, Any]) -> None:
    plan = plan_for(message("identify", integrations=integrations))
    assert (plan.outcome, plan.reason) == (Outcome.IGNORED, "excluded_by_integrations")


@pytest.mark.parametrize(
    "integrations",
    [{"All": False}, {"All": False, "Webhooks": True}, {"SaaSquatch": True}, {"SaaSquatch": {}}],
)
def test_other_integrations_settings_do_not_exclude(integrations: dict[str, Any]) -> None:
    assert plan_for(message("identify", integrations=integrations)).outcome is Outcome.DELIVERED


@pytest.mark.parametrize("user_id", [None, "", "   "])
def test_anonymous_only_identify_is_ignored(user_id: Any) -> None:
    body = message("identify", anonymousId="507f191e810c19729de860ea", traits={"email": "a@b.co"})
    body["userId"] = user_id
    plan = plan_for(body)
    assert (plan.outcome, plan.reason) == (Outcome.IGNORED, "anonymous")


def test_delete_is_ignored_by_default() -> None:
    plan = plan_for(message("delete"))
    assert (plan.outcome, plan.reason) == (Outcome.IGNORED, "delete_disabled")


def test_delete_when_enabled_deletes_the_user() -> None:
    plan = plan_for(
        message("delete", context={"traits": {"account_id": "acme"}}), honor_delete=True
    )
    (call,) = plan.calls
    assert call.purpose is Purpose.DELETE_USER
    assert (call.method, call.path, call.body) == ("DELETE", "/open/account/acme/user/u-1", None)
    assert call.params == {"doNotTrack": "false"}


def test_delete_can_also_add_the_user_to_do_not_track() -> None:
    options = MappingOptions(honor_delete=True, delete_do_not_track=True)
    (call,) = map_message(message("delete"), options, now=NOW).calls
    assert call.params == {"doNotTrack": "true"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"type": "identify", "userId": "u", "traits": ["not", "an", "object"]}, "invalid_message"),
        ({"type": "track", "userId": "u", "event": "E", "properties": "x"}, "invalid_message"),
        ({"type": "identify", "userId": "u", "context": 7}, "invalid_message"),
        ({"type": 3, "userId": "u"}, "invalid_message"),
    ],
)
def test_wrong_shapes_are_dead_lettered_with_the_field_named(
    body: dict[str, Any], reason: str
) -> None:
    plan = plan_for(body)
    assert (plan.outcome, plan.reason) == (Outcome.DEAD_LETTERED, reason)
    assert plan.detail


@pytest.mark.parametrize("body", [[], "identify", 3, None])
def test_a_message_that_is_not_an_object_is_dead_lettered(body: Any) -> None:
    plan = map_message(body, now=NOW)
    assert (plan.outcome, plan.reason) == (Outcome.DEAD_LETTERED, "malformed_message")


def test_null_traits_properties_and_context_are_treated_as_empty() -> None:
    body = {"type": "track", "userId": 5, "event": "Signed Up", "properties": None, "context": None}
    plan = plan_for(body)
    assert plan.outcome is Outcome.DELIVERED
    assert plan.calls[0].body is not None
    assert plan.calls[0].body["events"][0]["fields"] == {}


def test_bool_user_id_is_not_an_id() -> None:
    assert plan_for(message("identify", userId=True)).reason == "anonymous"


def test_float_user_id_uses_its_json_form() -> None:
    plan = plan_for(message("identify", userId=42.0))
    assert plan.calls[0].body is not None and plan.calls[0].body["id"] == "42"


def test_bad_event_key_map_is_refused_when_options_are_built() -> None:
    with pytest.raises(ValueError, match="event keys"):
        MappingOptions(event_key_map={"Signed Up": "signed up!"})


def test_plan_to_json_is_plain_data() -> None:
    out = plan_for(message("identify", context={"ip": "1.2.3.4"})).to_json()
    assert out == {
        "outcome": "delivered",
        "message_type": "identify",
        "account": {"id": "u-1", "from": "user_id"},
        "calls": [
            {
                "purpose": "upsert_user",
                "method": "PUT",
                "path": "/open/account/u-1/user/u-1",
                "headers": {"X-Forwarded-For": "1.2.3.4"},
                "body": {"id": "u-1", "accountId": "u-1"},
            }
        ],
    }
