"""Nothing SaaSquatch sends is lost silently: every field of its own example webhooks reaches
Segment (under its Segment name, dates as ISO 8601) or is listed in `DROPPED` with a reason, and
every field its webhook schemas name is declared in the stream table. The examples and schemas
are SaaSquatch's, copied into saasquatch_examples/ (see its README)."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from common.outcomes import Outcome
from stream import DROPPED, STREAMS, map_webhook
from stream.table import Stream

EXAMPLES = Path(__file__).resolve().parent / "saasquatch_examples"
SCHEMAS = EXAMPLES / "schemas" / "webhooks"
ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return loaded


def variant(name: str, kind: str | None = None, **data: Any) -> dict[str, Any]:
    """A SaaSquatch example with `data` changed the way its schema allows (for the shapes it
    has no example of: the reward types, `referral.ended`)."""
    hook = copy.deepcopy(example(name))
    hook["type"] = kind or hook["type"]
    hook["data"].update(data)
    return hook


REDEMPTION = {"id": "rd-1", "dateRedeemed": 1570129400000, "quantityRedeemed": "5"}
# Each forwarded type, by SaaSquatch's examples and schema-shaped variants of them.
HOOKS = {
    "UserCreatedClassic": example("UserCreatedClassic"),
    "UserCreatedClassicDisabled": example("UserCreatedClassicDisabled"),
    "UserCreatedClassic+schema": variant(
        "UserCreatedClassic",
        countryCode="CA",
        referredByCodes=["FRIEND10"],
        segments=["vip"],
        customFields={"plan": "pro", "age": 25, "hasDog": True, "address": None},
        dateBlocked=1570129400000,
        locale="en_CA",
        cookieId="cookie-1",
        paymentProviderId="cus_1",
        referralSource="cookie",
    ),
    "ReferralStartedClassic": example("ReferralStartedClassic"),
    "ReferralStartedClassicDisabled": example("ReferralStartedClassicDisabled"),
    "ReferralConvertedClassic": example("ReferralConvertedClassic"),
    "ReferralConvertedClassicDisabled": example("ReferralConvertedClassicDisabled"),
    "ReferralEnded": variant(
        "ReferralConvertedClassic",
        "referral.ended",
        dateReferralEnded=1570129600000,
        dateReferralPaid=1570129500000,
        fraudSignals={"name": {"score": 0, "message": "same name"}},
        referrerReward="rw-1",
        referredReward="rw-2",
    ),
    "RewardCreated": example("RewardCreated"),
    "RewardCreated FUELTANK": variant(
        "RewardCreated",
        type="FUELTANK",
        fuelTankCode="GIFT-7Q2X",
        amount=25,
        unit="USD",
        fuelTankType="CREDIT",
        dateCancelled=1570129700000,
        dateExpires=1601751708430,
        dateScheduledFor=1570129300000,
    ),
    "RewardCreated CREDIT": variant(
        "RewardCreated",
        type="CREDIT",
        unit="CENTS",
        assignedCredit=2000,
        redeemedCredit=500,
        redemptions=[REDEMPTION],
    ),
    "RewardCreated INTEGRATION": variant(
        "RewardCreated",
        type="INTEGRATION",
        unit="USD",
        description="A $20 gift card",
        valueInCents=2000,
        integrationId="tango",
        rewardDetails={"utid": "U123", "nested": {"a": [1, 2]}},
    ),
    "CouponCreated": example("CouponCreated"),
    "UserRewardBalanceChanged": example("UserRewardBalanceChanged"),
}


def iso(millis: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)).strftime(
        "%Y-%m-%dT%H:%M:%S.%f"
    )[:-3] + "Z"


def expected(value: Any, date: bool, dates_in: frozenset[str]) -> Any:
    if date and isinstance(value, int):
        return iso(value)
    if isinstance(value, list):
        return [expected(item, False, dates_in) for item in value]
    if isinstance(value, dict):
        return {k: expected(v, k in dates_in, dates_in) for k, v in value.items()}
    return value


def unaccounted(
    kind: str, stream: Stream, data: dict[str, Any], call: dict[str, Any], prefix: str = ""
) -> list[str]:
    """The keys of `data` (at `prefix`, and below where the table reads deeper) that are
    neither in the call as the table says nor in `DROPPED`."""
    sent = call["traits" if stream.call == "identify" else "properties"]
    missing = []
    for key, value in data.items():
        path = prefix + key
        readers = {name: rule for name, rule in stream.fields.items() if path in rule.paths}
        deeper = any(
            p.startswith(path + ".") for rule in stream.fields.values() for p in rule.paths
        )
        if path in DROPPED.get(kind, {}):
            continue
        if path == stream.spread and not prefix:
            lost = [k for k, v in value.items() if v is not None and sent.get(k) != v]
            missing += [f"{path}.{k}" for k in lost]
        elif value is None and (readers or deeper or path in stream.user):
            continue  # null is left out, by the rule
        elif readers:
            if not any(
                sent.get(name) == expected(value, rule.date, rule.dates_in)
                for name, rule in readers.items()
            ):
                missing.append(path)
        elif deeper and isinstance(value, dict):
            missing += unaccounted(kind, stream, value, call, path + ".")
        elif path in stream.user:
            if call.get("userId") != value:
                missing.append(path)
        else:
            missing.append(path)
    return missing


@pytest.mark.parametrize("name", HOOKS)
def test_every_field_of_saasquatchs_example_reaches_segment_or_is_dropped_on_purpose(
    name: str,
) -> None:
    hook = HOOKS[name]
    forwarding = map_webhook(hook)
    assert forwarding.outcome is Outcome.DELIVERED, forwarding
    [call] = forwarding.calls
    stream = STREAMS[hook["type"]]
    assert unaccounted(hook["type"], stream, hook["data"], call) == []
    sent = call["traits" if stream.call == "identify" else "properties"]
    assert not set(DROPPED.get(hook["type"], {})) & set(sent)


def test_the_checker_sees_a_field_left_out() -> None:
    """Without the table's row for `fuelTankCode`, its test would fail."""
    hook = HOOKS["RewardCreated FUELTANK"]
    [call] = map_webhook(hook).calls
    call = copy.deepcopy(call)
    del call["properties"]["fuelTankCode"]
    call["properties"]["dateCreated"] = hook["data"]["dateCreated"]  # epoch, not ISO
    stream = STREAMS["reward.created"]
    assert unaccounted("reward.created", stream, hook["data"], call) == [
        "dateCreated",
        "fuelTankCode",
    ]


def test_every_forwarded_type_has_an_example() -> None:
    assert {hook["type"] for hook in HOOKS.values()} == set(STREAMS)


def test_every_date_is_iso_8601_utc_with_milliseconds() -> None:
    [call] = map_webhook(HOOKS["RewardCreated"]).calls
    assert call["properties"]["dateCreated"] == "2019-10-03T19:01:48.430Z"
    for hook in HOOKS.values():
        [call] = map_webhook(hook).calls
        sent = call.get("traits") or call["properties"]
        for name, value in sent.items():
            if name.startswith("date") or name == "createdAt":
                assert ISO_MILLIS.match(value), (name, value)
        assert ISO_MILLIS.match(call["timestamp"])
        assert not any(name.endswith("Ms") for name in sent)


# --- the schemas ---------------------------------------------------------------------------------

SCHEMA_FILES = {
    "user.created": ["UserCreatedClassic", "UserCreatedClassicDisabled"],
    "referral.started": ["ReferralClassic", "ReferralClassicDisabled"],
    "referral.converted": ["ReferralClassic", "ReferralClassicDisabled"],
    "referral.ended": ["ReferralClassic", "ReferralClassicDisabled"],  # no schema of its own
    "reward.created": ["RewardCreatedData"],
    "coupon.created": ["CouponCreatedData"],
    "user.reward.balance.changed": ["UserRewardBalanceChanged"],
}


def schema_properties(kind: str) -> dict[str, dict[str, Any]]:
    """Every property the type's `data` schemas name, with the per-type ones of a reward
    (`dependencies`), and the nested ones of a `$ref` to UserIdentifier as `referrer.id`."""
    found: dict[str, dict[str, Any]] = {}
    for name in SCHEMA_FILES[kind]:
        schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
        branches = schema.get("dependencies", {}).get("type", {}).get("oneOf", [])
        for properties in [schema["properties"], *(b["properties"] for b in branches)]:
            for key, spec in properties.items():
                if spec.get("$ref") == "../UserIdentifier.schema.json#":
                    nested = json.loads((SCHEMAS.parent / "UserIdentifier.schema.json").read_text())
                    found.update({f"{key}.{k}": v for k, v in nested["properties"].items()})
                else:
                    found[key] = spec
    return found


@pytest.mark.parametrize("kind", SCHEMA_FILES)
def test_every_field_of_saasquatchs_schemas_is_declared_or_dropped_with_a_reason(kind: str) -> None:
    stream = STREAMS[kind]
    read = {path for rule in stream.fields.values() for path in rule.paths}
    read |= set(stream.user) | ({stream.spread} if stream.spread else set())
    undeclared = [
        name
        for name in schema_properties(kind)
        if name not in read and name not in DROPPED.get(kind, {})
    ]
    assert undeclared == []


@pytest.mark.parametrize("kind", SCHEMA_FILES)
def test_the_schemas_dates_are_declared_dates(kind: str) -> None:
    """Every `date...` property is a date; `resourceVersion`, an integer too, is not."""
    stream = STREAMS[kind]
    for name in schema_properties(kind):
        rules = [rule for rule in stream.fields.values() if name in rule.paths]
        if name.startswith("date"):
            assert rules and all(rule.date for rule in rules), name
        elif rules:
            assert not any(rule.date for rule in rules), name
    if kind == "reward.created":
        assert stream.fields["redemptions"].dates_in == {"dateRedeemed"}


def test_what_is_dropped_is_a_schema_field_with_a_reason_and_never_read() -> None:
    for kind, fields in DROPPED.items():
        read = {path for rule in STREAMS[kind].fields.values() for path in rule.paths}
        for name, reason in fields.items():
            assert name in schema_properties(kind), name
            assert name not in read
            assert len(reason) > 20
