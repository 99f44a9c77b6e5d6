"""identify -> user upsert, rule by rule, on payloads shaped like Segment's spec examples."""

from __future__ import annotations

from typing import Any

import pytest

from common.outcomes import Outcome
from saasquatch.calls import Purpose

from ..factories import plan_for, spec_identify
from ..support.saasquatch_rules import check_upsert


def upsert_of(message: dict[str, Any], **options: Any) -> dict[str, Any]:
    plan = plan_for(message, **options)
    assert plan.outcome is Outcome.DELIVERED, plan
    (call,) = plan.calls
    assert call.purpose is Purpose.UPSERT_USER
    assert call.body is not None
    check_upsert(call.body)
    return call.body


def test_spec_example_becomes_one_exact_upsert() -> None:
    plan = plan_for(spec_identify())
    (call,) = plan.calls
    assert call.method == "PUT"
    assert call.path == "/open/account/97980cfea0067/user/97980cfea0067"
    assert call.headers == {
        "X-Forwarded-For": "8.8.8.8",
        "User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_2) AppleWebKit/600.3.18",
    }
    assert call.body == {
        "id": "97980cfea0067",
        "accountId": "97980cfea0067",
        "email": "peter@example.com",
        "firstName": "Peter",
        "lastName": "Gibbons",
        "locale": "en_US",
        "customFields": {"plan": "premium", "logins": 5},
    }
    check_upsert(call.body)


@pytest.mark.parametrize(
    "traits",
    [
        {"firstName": "Ada", "lastName": "Lovelace", "avatar": "https://x.test/a.png"},
        {"first_name": "Ada", "last_name": "Lovelace", "Avatar": "https://x.test/a.png"},
        {"FirstName": "Ada", "Last-Name": "Lovelace", "avatar": "https://x.test/a.png"},
        {"first name": "Ada", "LAST_NAME": "Lovelace", "AVATAR": "https://x.test/a.png"},
    ],
)
def test_reserved_traits_match_ignoring_case_and_separators(traits: dict[str, Any]) -> None:
    body = upsert_of(spec_identify(traits=traits))
    assert body["firstName"] == "Ada"
    assert body["lastName"] == "Lovelace"
    assert body["imageUrl"] == "https://x.test/a.png"
    assert "customFields" not in body


@pytest.mark.parametrize(
    ("name", "first", "last"),
    [
        ("Peter Gibbons", "Peter", "Gibbons"),
        ("  Jean  Claude Van Damme ", "Jean", "Claude Van Damme"),
        ("Cher", "Cher", None),
        ("Zoë Ångström-Æsir 🦄", "Zoë", "Ångström-Æsir 🦄"),
    ],
)
def test_name_only_is_split_on_the_first_space(name: str, first: str, last: str | None) -> None:
    body = upsert_of(spec_identify(traits={"name": name}))
    assert body.get("firstName") == first
    assert body.get("lastName") == last
    assert "customFields" not in body, "name is consumed, never a custom field"


def test_explicit_first_and_last_name_win_over_name() -> None:
    body = upsert_of(spec_identify(traits={"name": "Peter Gibbons", "firstName": "Pete"}))
    assert body["firstName"] == "Pete"
    assert body["lastName"] == "Gibbons"


@pytest.mark.parametrize(
    ("given", "expected"),
    [("en-US", "en_US"), ("en_us", "en_US"), ("EN-us", "en_US"), ("fr_CA", "fr_CA")],
)
def test_locale_is_normalised(given: str, expected: str) -> None:
    message = spec_identify()
    message["context"]["locale"] = given
    assert upsert_of(message)["locale"] == expected


@pytest.mark.parametrize("given", ["en", "english", "zh-Hans-CN", "", 42, None, "e1-US"])
def test_a_locale_that_cannot_be_normalised_is_left_out(given: Any) -> None:
    message = spec_identify()
    message["context"]["locale"] = given
    assert "locale" not in upsert_of(message)


def test_numeric_user_id_is_used_as_a_string() -> None:
    plan = plan_for(spec_identify(userId=1234567890123))
    (call,) = plan.calls
    assert call.body is not None
    assert call.body["id"] == "1234567890123"
    assert call.path == "/open/account/1234567890123/user/1234567890123"


def test_ids_are_percent_encoded_in_the_path() -> None:
    plan = plan_for(spec_identify(userId="ana@example.com/ü x", traits={"accountId": "org 7"}))
    (call,) = plan.calls
    assert call.path == "/open/account/org%207/user/ana%40example.com%2F%C3%BC%20x"
    assert call.body is not None
    assert call.body["id"] == "ana@example.com/ü x"


@pytest.mark.parametrize("name", ["account_id", "accountId", "Account ID"])
def test_account_id_trait_makes_a_shared_account(name: str) -> None:
    body = upsert_of(spec_identify(traits={"email": "a@b.co", name: "acme-corp"}))
    assert body["accountId"] == "acme-corp"
    assert body["id"] == "97980cfea0067"
    assert "customFields" not in body, "account_id is identity, not a custom field"


def test_empty_account_id_falls_back_to_the_user() -> None:
    body = upsert_of(spec_identify(traits={"account_id": ""}))
    assert body["accountId"] == "97980cfea0067"


def test_referred_by_codes_accepts_a_list_or_a_single_code() -> None:
    assert upsert_of(spec_identify(traits={"referredByCodes": ["BOB7", "ALICE"]}))[
        "referredByCodes"
    ] == ["BOB7", "ALICE"]
    assert upsert_of(spec_identify(traits={"referred_by_codes": "BOB7"}))["referredByCodes"] == [
        "BOB7"
    ]


def test_ignored_traits_never_become_custom_fields() -> None:
    traits = {
        "address": {"city": "Paris"},
        "birthday": "1990-01-01",
        "created_at": "2020-01-01T00:00:00Z",
        "createdAt": "2020-01-01T00:00:00Z",
        "id": "97980cfea0067",
        "email": "x@y.z",
        "company": {"name": "Initech", "employee_count": 250},
    }
    body = upsert_of(spec_identify(traits=traits))
    assert body["customFields"] == {"company": '{"name":"Initech","employee_count":250}'}


def test_reserved_traits_saasquatch_has_no_field_for_are_noted_as_left_out() -> None:
    """docs/mapping.md promises every left-out trait is noted; the ones used elsewhere (email,
    id, account) are not left out, so they are not noted."""
    traits = {
        "address": {"city": "Paris"},
        "birthday": "1990-01-01",
        "created_at": "2020-01-01T00:00:00Z",
        "email": "x@y.z",
        "account_id": "acct-7",
        "id": "97980cfea0067",
    }
    plan = plan_for(spec_identify(traits=traits))
    [note] = [note for note in plan.notes if note.startswith("traits left out")]
    assert all(name in note for name in ("address", "birthday", "created_at"))
    assert not any(name in note for name in ("email", "account_id", "x@y.z", "Paris"))


def test_system_fields_are_never_written() -> None:
    traits = {"lastPurchaseDate": 1, "total_purchase_count": 3, "tier": "gold"}
    body = upsert_of(spec_identify(traits=traits))
    assert body["customFields"] == {"tier": "gold"}


def test_custom_field_names_are_sanitised_and_first_one_wins() -> None:
    traits = {
        "favourite-colour": "red",
        "favourite colour": "blue",
        "Plan Tier (2024)": "gold",
        "😀": "dropped",
        "x" * 80: "long",
    }
    body = upsert_of(spec_identify(traits=traits))
    assert body["customFields"] == {
        "favouritecolour": "red",
        "PlanTier2024": "gold",
        "x" * 64: "long",
    }


def test_nested_and_array_traits_become_compact_json() -> None:
    traits = {"tags": ["vip", "beta"], "prefs": {"email": True, "sms": None}, "empty": []}
    body = upsert_of(spec_identify(traits=traits))
    assert body["customFields"] == {
        "tags": '["vip","beta"]',
        "prefs": '{"email":true,"sms":null}',
        "empty": "[]",
    }


def test_null_trait_clears_the_custom_field_but_no_top_level_null_is_sent() -> None:
    body = upsert_of(spec_identify(traits={"email": None, "plan": None, "name": None}))
    assert body == {
        "id": "97980cfea0067",
        "accountId": "97980cfea0067",
        "locale": "en_US",
        "customFields": {"plan": None},
    }


def test_four_kilobyte_strings_are_cut_to_1024_characters() -> None:
    emoji = "🎉" * 4096
    body = upsert_of(spec_identify(traits={"bio": "a" * 4096, "party": emoji}))
    assert body["customFields"]["bio"] == "a" * 1024
    assert body["customFields"]["party"] == "🎉" * 1024


def test_more_than_100_traits_keep_the_first_100_in_message_order() -> None:
    traits = {f"trait_{i:03d}": i for i in range(150)}
    plan = plan_for(spec_identify(traits=traits))
    (call,) = plan.calls
    assert call.body is not None
    fields = call.body["customFields"]
    assert list(fields) == [f"trait_{i:03d}" for i in range(100)]
    check_upsert(call.body)
    assert any("over 100" in note and "trait_149" in note for note in plan.notes)


def test_unicode_and_emoji_values_survive() -> None:
    body = upsert_of(spec_identify(traits={"name": "Łukasz Żółć", "motto": "愛 & 🍕"}))
    assert (body["firstName"], body["lastName"]) == ("Łukasz", "Żółć")
    assert body["customFields"] == {"motto": "愛 & 🍕"}


def test_end_user_headers_are_best_effort() -> None:
    message = spec_identify()
    message["context"]["ip"] = "not an ip"
    message["context"]["userAgent"] = "Bad\r\nInjected: yes"
    (call,) = plan_for(message).calls
    assert call.headers == {"User-Agent": "BadInjected: yes"}


def test_ipv6_is_forwarded() -> None:
    message = spec_identify()
    message["context"]["ip"] = "2001:db8::1"
    (call,) = plan_for(message).calls
    assert call.headers["X-Forwarded-For"] == "2001:db8::1"


def test_notes_name_dropped_traits_but_never_values() -> None:
    plan = plan_for(spec_identify(traits={"email": "secret.person@example.com", "💥": "boom"}))
    text = " ".join(plan.notes)
    assert "💥" in text
    assert "secret.person" not in text


def test_identify_can_be_switched_off() -> None:
    plan = plan_for(spec_identify(), ignore_identify=True)
    assert (plan.outcome, plan.reason, plan.calls) == (Outcome.IGNORED, "identify_disabled", ())
