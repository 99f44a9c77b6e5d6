"""Which account a message goes to, and why: the `account_id` trait, else the account deliver
remembers for the user (`remembered_account`), else the user id (the hosted rule). The mapper
stays pure: the memory's answer is handed in. And the preview, which shows it."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from common.outcomes import Outcome
from mapper import AccountFrom, MappingOptions, map_message
from mapper.__main__ import run

from ..factories import NOW


def call_paths(message: dict[str, Any], remembered: str | None = None, **options: Any) -> list:
    plan = map_message(message, MappingOptions(**options), now=NOW, remembered_account=remembered)
    assert plan.outcome is Outcome.DELIVERED, plan
    paths = [call.path for call in plan.calls]
    if plan.upsert_on_missing_user is not None:
        paths.append(plan.upsert_on_missing_user.path)
    return paths


REFUND = {
    "type": "track",
    "userId": "u-42",
    "event": "Order Refunded",
    "messageId": "m-refund-0001",
    "properties": {"order_id": "o-1", "total": 30},
}


def test_a_track_without_an_account_goes_to_the_remembered_one_with_its_upsert() -> None:
    plan = map_message(REFUND, now=NOW, remembered_account="acct-7")
    assert plan.account is not None
    assert (plan.account.id, plan.account.source) == ("acct-7", AccountFrom.REMEMBERED)
    [event] = plan.calls
    assert event.path == "/open/account/acct-7/user/u-42/events"
    assert event.body is not None and event.body["accountId"] == "acct-7"
    upsert = plan.upsert_on_missing_user
    assert upsert is not None and upsert.path == "/open/account/acct-7/user/u-42"
    assert upsert.body == {"id": "u-42", "accountId": "acct-7"}


def test_without_a_remembered_account_the_user_id_is_the_account() -> None:
    plan = map_message(REFUND, now=NOW)
    assert plan.account is not None and plan.account.source is AccountFrom.USER_ID
    assert call_paths(REFUND) == [
        "/open/account/u-42/user/u-42/events",
        "/open/account/u-42/user/u-42",
    ]


def test_an_account_the_message_names_wins_over_the_remembered_one() -> None:
    named = {**REFUND, "context": {"traits": {"account_id": "acct-9"}}}
    plan = map_message(named, now=NOW, remembered_account="acct-7")
    assert plan.account is not None
    assert (plan.account.id, plan.account.source) == ("acct-9", AccountFrom.TRAIT)
    assert call_paths(named, "acct-7")[0] == "/open/account/acct-9/user/u-42/events"


def test_identify_uses_the_remembered_account_when_its_traits_name_none() -> None:
    identify = {"type": "identify", "userId": "u-42", "traits": {"email": "a@b.example"}}
    assert call_paths(identify, "acct-7") == ["/open/account/acct-7/user/u-42"]
    named = {**identify, "traits": {"accountId": "acct-9"}}
    assert call_paths(named, "acct-7") == ["/open/account/acct-9/user/u-42"]


def test_delete_uses_the_remembered_account() -> None:
    delete = {"type": "delete", "userId": "u-42"}
    assert call_paths(delete, "acct-7", honor_delete=True) == ["/open/account/acct-7/user/u-42"]


@pytest.mark.parametrize(
    "message",
    [
        {"type": "page", "userId": "u-42"},
        {"type": "identify", "anonymousId": "a-1"},
        {"type": "track", "userId": "u-42"},  # no event name: dead-lettered
    ],
)
def test_a_plan_without_calls_names_no_account(message: dict[str, Any]) -> None:
    plan = map_message(message, now=NOW, remembered_account="acct-7")
    assert plan.account is None and "account" not in plan.to_json()


def test_the_plan_says_the_account_and_why() -> None:
    out = map_message(REFUND, now=NOW, remembered_account="acct-7").to_json()
    assert out["account"] == {"id": "acct-7", "from": "remembered"}


# --- the preview ----------------------------------------------------------------------------------


def preview(lines: list[dict[str, Any]], *args: str) -> list[dict[str, Any]]:
    out, err = io.StringIO(), io.StringIO()
    stdin = io.StringIO("\n".join(json.dumps(line) for line in lines))
    code = run(stdin, out, err, ["--now", "2026-11-29T12:00:00Z", *args])
    assert code == 0, err.getvalue()
    return [json.loads(line) for line in out.getvalue().splitlines()]


IDENTIFY = {"type": "identify", "userId": "u-42", "traits": {"account_id": "acct-7"}}


def test_the_preview_remembers_an_account_named_on_an_earlier_line() -> None:
    identify, refund = preview([IDENTIFY, REFUND])
    assert identify["account"] == {"id": "acct-7", "from": "trait"}
    assert refund["account"] == {"id": "acct-7", "from": "remembered"}
    assert refund["calls"][0]["path"] == "/open/account/acct-7/user/u-42/events"


def test_the_preview_starts_from_the_accounts_it_is_told_deliver_remembers() -> None:
    [refund] = preview([REFUND], "--remembered-account", "u-42=acct-9")
    assert refund["calls"][0]["path"] == "/open/account/acct-9/user/u-42/events"
    [other] = preview([{**REFUND, "userId": "u-43"}], "--remembered-account", "u-42=acct-9")
    assert other["account"] == {"id": "u-43", "from": "user_id"}


def test_the_preview_shows_the_hosted_rule_when_told_to_remember_nothing() -> None:
    _, refund = preview([IDENTIFY, REFUND], "--no-remember-accounts")
    assert refund["account"] == {"id": "u-42", "from": "user_id"}


def test_the_preview_forgets_a_deleted_user() -> None:
    delete = {"type": "delete", "userId": "u-42"}
    _, deleted, refund = preview([IDENTIFY, delete, REFUND], "--honor-delete")
    assert deleted["calls"][0]["path"] == "/open/account/acct-7/user/u-42"
    assert refund["account"] == {"id": "u-42", "from": "user_id"}


def test_a_remembered_account_without_its_user_is_a_bad_option() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = run(io.StringIO(""), out, err, ["--remembered-account", "acct-9"])
    assert code == 2
    assert "USER=ACCOUNT" in err.getvalue()


def test_the_preview_keeps_the_newest_account_by_the_messages_time_as_deliver_does() -> None:
    """An identify dated a month earlier, on a later line, does not move the user back."""
    lines = [
        {**IDENTIFY, "timestamp": "2026-11-29T03:00:00Z"},
        {**IDENTIFY, "traits": {"account_id": "acct-OLD"}, "timestamp": "2026-10-29T03:00:00Z"},
        REFUND,
    ]
    _, old, refund = preview(lines)
    assert old["account"] == {"id": "acct-OLD", "from": "trait"}, "sent where it says"
    assert refund["account"] == {"id": "acct-7", "from": "remembered"}


def test_the_preview_forgets_a_user_whose_delete_is_ignored_by_design() -> None:
    delete = {"type": "delete", "userId": "u-42"}
    _, deleted, refund = preview([IDENTIFY, delete, REFUND])  # HONOR_DELETE off
    assert (deleted["outcome"], deleted["reason"]) == ("ignored", "delete_disabled")
    assert refund["account"] == {"id": "u-42", "from": "user_id"}
