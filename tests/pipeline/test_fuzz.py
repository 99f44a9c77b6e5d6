"""Fuzzing both entry points' bodies: whatever arrives, the answer is a clear 2xx/4xx with JSON,
never a 500, and the log never holds an unhandled exception."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..factories import TOKEN
from ..support.functions import MakeDeliver, MakeIngest

pytestmark = pytest.mark.fuzz

FUZZ = settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**4000),  # past float range, past int-str limits
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=50),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=20),  # lone surrogates
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=30,
)
FIELDS = [
    "type", "userId", "anonymousId", "messageId", "event", "traits", "properties", "context",
    "integrations", "timestamp", "originalTimestamp", "receivedAt", "batch", "name",
]  # fmt: skip
# Segment-shaped messages with any value (so every wrong type) in every field.
segment_like = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)
typed_segment_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["identify", "track", "page", "delete", "alias", "x"])},
    optional={
        "userId": json_values,
        "event": st.one_of(st.sampled_from(["Order Completed", "Order Refunded"]), json_values),
        "properties": json_values,
        "traits": json_values,
        "context": st.one_of(json_values, st.fixed_dictionaries({"traits": json_values})),
        "timestamp": json_values,
        "messageId": json_values,
    },
)


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def deep(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


bodies = st.one_of(
    st.binary(max_size=600),
    json_values.map(dumps),
    segment_like.map(dumps),
    typed_segment_like.map(dumps),
    st.lists(typed_segment_like, max_size=5).map(dumps),
    st.builds(lambda items: dumps({"batch": items}), st.lists(segment_like, max_size=4)),
    st.integers(min_value=1, max_value=200_000).map(deep),
    st.integers(min_value=1, max_value=200_000).map(lambda depth: b"[" * depth),
    typed_segment_like.map(lambda message: dumps(message)[:-1] + b', "bad": "\xff\xfe"}'),
)


def no_unhandled_errors(out: str) -> None:
    for line in out.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            assert "exception" not in entry, entry["exception"][-800:]
            assert entry.get("status") != 500, entry


@FUZZ
@given(body=bodies)
def test_ingest_never_answers_500(
    make_ingest: MakeIngest, body: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    client = _client(make_ingest)
    answer = client.post("/", data=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code in (200, 400, 413), answer.data[:300]
    payload = answer.get_json()
    assert isinstance(payload, dict)
    if answer.status_code != 200:
        assert isinstance(payload["error"], str)
    no_unhandled_errors(capsys.readouterr().out)


def envelope(data: bytes) -> bytes:
    return dumps({"message": {"data": base64.b64encode(data).decode(), "messageId": "1"}})


pushes = st.one_of(
    bodies,  # not an envelope at all, mostly
    bodies.map(envelope),  # an envelope carrying anything
    st.builds(lambda value: dumps({"message": value}), json_values),
)


@FUZZ
@given(body=pushes)
def test_deliver_never_answers_500(
    make_deliver: MakeDeliver, body: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    client = _client(make_deliver, DRY_RUN="true")  # dead letters on the in-memory topic
    answer = client.post("/", data=body, content_type="application/json")
    assert answer.status_code in (200, 400, 413), answer.data[:300]
    payload = answer.get_json()
    assert isinstance(payload, dict)
    if answer.status_code == 200:
        assert payload["outcome"] in {"delivered", "ignored", "dead_lettered"}
    else:
        assert isinstance(payload["error"], str)
    no_unhandled_errors(capsys.readouterr().out)


_clients: dict[int, Any] = {}


def _client(make: Any, **env: str) -> Any:
    """One app per test function (the fixtures are per test, the examples are many)."""
    key = id(make)
    if key not in _clients:
        _clients.clear()
        _clients[key] = make(**env)
    return _clients[key]
