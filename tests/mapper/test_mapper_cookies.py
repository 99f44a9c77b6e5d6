"""The referral cookie the web plugin puts in `integrations.SaaSquatch.cookies` -> the user
upsert's `cookies` (identify, and the upserts a track makes), checked before it is sent."""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.outcomes import Outcome
from mapper.__main__ import run as run_preview
from mapper.cookies import (
    COOKIE_PATH,
    MAX_COOKIE_CHARS,
    MAX_COOKIE_DEPTH,
    CookieRefused,
    checked_cookie,
)
from saasquatch.calls import Purpose

from ..factories import plan_for, spec_identify, spec_track
from ..support.examples import examples
from ..support.saasquatch_rules import check_upsert, referral_cookie_problem
from ..support.strategies import any_text, json_values

# What squatch.js keeps in `_saasquatch` after a referral link (SaaSquatch's documented schema).
REFERRAL = {
    "app.referralsaasquatch.com": {
        "test_abc123_CODE": {
            "codes": {"referral-program": "BOBTESTERSON"},
            "codesExp": {"BOBTESTERSON": 1767225600000},
        }
    }
}


def encoded(value: Any, padded: bool = False) -> str:
    """`value` as squatch.js's b64encode writes it: base64url of the JSON text, no padding."""
    text = base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()
    return text if padded else text.rstrip("=")


COOKIE = encoded(REFERRAL)


def with_cookie(message: dict[str, Any], value: Any, key: str = "SaaSquatch") -> dict[str, Any]:
    return {**message, "integrations": {key: {"cookies": value}}}


def identify_upsert(message: dict[str, Any], **options: Any) -> tuple[dict[str, Any], list[str]]:
    plan = plan_for(message, **options)
    assert plan.outcome is Outcome.DELIVERED, plan
    [call] = plan.calls
    assert call.purpose is Purpose.UPSERT_USER and call.body is not None
    check_upsert(call.body)
    return call.body, cookie_notes(plan.notes)


def cookie_notes(notes: tuple[str, ...]) -> list[str]:
    """The plan's notes about the cookie (the spec's example has others: its `address`)."""
    return [note for note in notes if note.startswith("referral cookie")]


def test_the_path_is_the_web_plugins() -> None:
    assert COOKIE_PATH == ("integrations", "SaaSquatch", "cookies")


def test_a_valid_cookie_is_sent_exactly_as_it_came() -> None:
    assert "=" not in COOKIE and len(COOKIE) % 4 != 0  # unpadded, as squatch.js writes it
    body, notes = identify_upsert(with_cookie(spec_identify(), COOKIE))
    assert body["cookies"] == COOKIE
    assert notes == []
    assert referral_cookie_problem(body["cookies"]) is None  # SaaSquatch would take it


def test_a_padded_cookie_is_sent_with_its_padding() -> None:
    padded = encoded(REFERRAL, padded=True)
    assert padded.endswith("=")
    body, _ = identify_upsert(with_cookie(spec_identify(), padded))
    assert body["cookies"] == padded


@pytest.mark.parametrize("key", ["saasquatch", "SAASQUATCH", "Saa_Squatch"])
def test_the_integration_name_matches_like_the_opt_out(key: str) -> None:
    body, _ = identify_upsert(with_cookie(spec_identify(), COOKIE, key))
    assert body["cookies"] == COOKIE


def test_no_cookie_sends_no_field_and_no_note() -> None:
    body, notes = identify_upsert(spec_identify())
    assert "cookies" not in body and notes == []
    body, notes = identify_upsert({**spec_identify(), "integrations": {"SaaSquatch": True}})
    assert "cookies" not in body and notes == []


def test_an_opt_out_still_wins_over_a_cookie() -> None:
    plan = plan_for({**spec_identify(), "integrations": {"SaaSquatch": False}})
    assert (plan.outcome, plan.reason) == (Outcome.IGNORED, "excluded_by_integrations")


STANDARD_BASE64 = base64.b64encode(b'{"k":"??>"}').decode()  # `+` and `=`
BAD_COOKIES = {
    "standard base64 (+, /)": (STANDARD_BASE64, "not base64url"),
    "standard base64 (/)": (base64.b64encode(b'{"x":">>>?"}').decode(), "not base64url"),
    "garbage": ("not a cookie!", "not base64url"),
    "a space inside": (COOKIE[:8] + " " + COOKIE[8:], "not base64url"),
    "padding in the middle": ("eyJ9=eyJ9", "not base64url"),
    "too much padding": (encoded({}) + "===", "not base64url (its length)"),
    "impossible length": ("eyJhIjoxfQxyz", "not base64url (its length)"),
    "not UTF-8": (base64.urlsafe_b64encode(b'{"a":"\xff"}').decode(), "not base64url of JSON"),
    "not JSON": (base64.urlsafe_b64encode(b"codes=BOB").decode(), "not base64url of JSON"),
    "NaN": (base64.urlsafe_b64encode(b'{"a":NaN}').decode(), "not base64url of JSON"),
    "a JSON array": (encoded([REFERRAL]), "not a JSON object"),
    "a JSON string": (encoded("BOBTESTERSON"), "not a JSON object"),
    "a JSON number": (encoded(42), "not a JSON object"),
    "JSON null": (encoded(None), "not a JSON object"),
    "empty": ("", "empty"),
    "over the cap": (encoded({"k": "x" * MAX_COOKIE_CHARS}), f"over {MAX_COOKIE_CHARS} characters"),
    "nested too deeply": (
        encoded({"a": [[[[[[[[[[]]]]]]]]]]}),
        f"nested deeper than {MAX_COOKIE_DEPTH} levels",
    ),
    "nested 1,500 levels, within the cap": (
        base64.urlsafe_b64encode(b'{"a":' + b"[" * 1500 + b"]" * 1500 + b"}").decode().rstrip("="),
        f"nested deeper than {MAX_COOKIE_DEPTH} levels",
    ),
    "a number": (42, "not a string (int)"),
    "an object": (REFERRAL, "not a string (dict)"),
    "a list": ([COOKIE], "not a string (list)"),
    "a boolean": (True, "not a string (bool)"),
}


@pytest.mark.parametrize("case", BAD_COOKIES)
def test_anything_else_is_left_out_with_a_note_naming_why_not_the_value(case: str) -> None:
    value, why = BAD_COOKIES[case]
    body, notes = identify_upsert(with_cookie(spec_identify(), value))
    assert "cookies" not in body
    assert notes == [f"referral cookie left out: integrations.SaaSquatch.cookies: {why}"]
    shown = json.dumps(value)[1:-1] if isinstance(value, str) else None
    assert not shown or all(shown not in note for note in notes)
    # The rest of the upsert is untouched.
    assert body == identify_upsert(spec_identify())[0]


def test_the_cap_is_inclusive() -> None:
    # {"k":"xxx..."} base64url-encoded to exactly the cap (3 bytes -> 4 characters).
    text = '{"k":"' + "x" * (MAX_COOKIE_CHARS // 4 * 3 - 8) + '"}'
    value = base64.urlsafe_b64encode(text.encode()).decode()
    assert len(value) == MAX_COOKIE_CHARS
    assert checked_cookie(value) == value
    with pytest.raises(CookieRefused):
        checked_cookie(value + "AA")


def test_referred_by_codes_and_the_cookie_are_both_sent() -> None:
    """SaaSquatch applies `referredByCodes` first and the cookie only without them: the mapper
    leaves that order to SaaSquatch and sends both."""
    message = with_cookie(spec_identify(traits={"referredByCodes": ["ALICE"]}), COOKIE)
    body, _ = identify_upsert(message)
    assert body["referredByCodes"] == ["ALICE"]
    assert body["cookies"] == COOKIE


def test_the_upsert_a_track_makes_carries_the_cookie() -> None:
    message = with_cookie(spec_track(), COOKIE)
    plan = plan_for(message)  # missing_user: the upsert runs only after a 404
    assert plan.upsert_on_missing_user is not None
    assert plan.upsert_on_missing_user.body is not None
    assert plan.upsert_on_missing_user.body["cookies"] == COOKIE
    [event] = plan.calls
    assert event.body is not None and "cookies" not in json.dumps(event.body)
    always = plan_for(message, track_upsert_strategy="always")
    upsert, _ = always.calls
    assert upsert.purpose is Purpose.UPSERT_USER and upsert.body is not None
    assert upsert.body["cookies"] == COOKIE
    check_upsert(upsert.body)


def test_a_track_without_an_upsert_ignores_the_cookie() -> None:
    plan = plan_for(with_cookie(spec_track(), "garbage!"), track_upsert_strategy="never")
    assert plan.upsert_on_missing_user is None and cookie_notes(plan.notes) == []
    noted = plan_for(with_cookie(spec_track(), "garbage!"))
    assert noted.upsert_on_missing_user is not None
    assert noted.upsert_on_missing_user.body is not None
    assert "cookies" not in noted.upsert_on_missing_user.body
    assert "referral cookie left out: integrations.SaaSquatch.cookies: not base64url" in (
        noted.notes
    )


def preview(message: dict[str, Any]) -> dict[str, Any]:
    """The plan `python -m mapper` prints for `message` (run in-process, as it runs)."""
    out, err = io.StringIO(), io.StringIO()
    code = run_preview(
        io.StringIO(json.dumps(message)), out, err, ["--now", "2026-11-29T12:00:00Z"]
    )
    assert code == 0, err.getvalue()
    [line] = out.getvalue().splitlines()
    plan: dict[str, Any] = json.loads(line)
    return plan


def test_the_preview_shows_the_cookie() -> None:
    shown = preview(with_cookie(spec_identify(), COOKIE))
    assert shown["calls"][0]["body"]["cookies"] == COOKIE
    plan = preview(with_cookie(spec_identify(), "garbage!"))
    assert "cookies" not in plan["calls"][0]["body"]
    assert cookie_notes(tuple(plan["notes"])) == [
        "referral cookie left out: integrations.SaaSquatch.cookies: not base64url"
    ]


# --- the checking rule, as a property ---------------------------------------------------------


def is_json_object_within_cap(value: Any) -> bool:
    """The rule, said another way: a string of at most the cap that strict base64 (after the
    URL-safe alphabet is mapped back and the padding restored) decodes to a JSON object."""
    if not isinstance(value, str) or not value or len(value) > MAX_COOKIE_CHARS:
        return False
    if "+" in value or "/" in value:
        return False
    unpadded = value.rstrip("=")
    if "=" in unpadded or (value != unpadded and len(value) % 4):
        return False
    standard = unpadded.translate(str.maketrans("-_", "+/")) + "=" * (-len(unpadded) % 4)
    try:
        decoded = json.loads(
            base64.b64decode(standard, validate=True).decode("utf-8"),
            parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)),
        )
    except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(decoded, dict) and nesting(decoded) <= MAX_COOKIE_DEPTH


def nesting(value: Any) -> int:
    """How many objects and arrays deep `value` goes (a scalar: 0)."""
    if isinstance(value, dict):
        return 1 + max(map(nesting, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(nesting, value), default=0)
    return 0


base64url_text = st.text(
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ "),
    max_size=64,
)
candidates = st.one_of(
    json_values.map(encoded),
    st.tuples(json_values, st.booleans()).map(lambda pair: encoded(*pair)),
    st.dictionaries(any_text, json_values, max_size=4).map(encoded),
    base64url_text,
    any_text,
    json_values,
    st.binary(max_size=64).map(lambda data: base64.urlsafe_b64encode(data).decode()),
    # around the depth cap: an object holding arrays or objects `depth` levels deep
    st.tuples(st.integers(0, 2 * MAX_COOKIE_DEPTH), st.booleans()).map(
        lambda pair: encoded({"a": deep(*pair)})
    ),
)


def deep(depth: int, objects: bool) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"k": value} if objects else [value]
    return value


@settings(max_examples=examples(400))
@given(value=candidates)
def test_a_value_is_accepted_iff_it_decodes_to_a_json_object_within_the_cap(value: Any) -> None:
    try:
        accepted = checked_cookie(value) == value
    except CookieRefused:
        accepted = False
    assert accepted is is_json_object_within_cap(value)


@settings(max_examples=examples(200))
@given(value=st.one_of(candidates, st.dictionaries(any_text, json_values, max_size=3)))
def test_the_mapper_never_raises_on_a_cookie_and_sends_only_accepted_ones(value: Any) -> None:
    body, notes = identify_upsert(with_cookie(spec_identify(), value))
    if is_json_object_within_cap(value):
        assert body["cookies"] == value and notes == []
    elif value is None:  # no cookie at all
        assert "cookies" not in body and notes == []
    else:
        assert "cookies" not in body
        assert len(notes) == 1 and notes[0].startswith("referral cookie left out: ")
