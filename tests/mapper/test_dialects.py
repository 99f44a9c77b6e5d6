"""Request body shapes Segment sends: one message, an array, an HTTP API batch envelope."""

from __future__ import annotations

from typing import Any

import pytest

from mapper.dialects import BodyError, messages_from_body


def test_single_message() -> None:
    assert messages_from_body({"type": "track"}) == [{"type": "track"}]


def test_array_of_messages() -> None:
    assert messages_from_body([{"type": "a"}, {"type": "b"}]) == [{"type": "a"}, {"type": "b"}]


def test_batch_envelope_merges_context_integrations_and_sent_at_item_keys_winning() -> None:
    body = {
        "batch": [
            {"type": "identify", "userId": "1", "context": {"ip": "1.1.1.1"}},
            {
                "type": "track",
                "userId": "2",
                "integrations": {"SaaSquatch": False},
                "sentAt": "2026-11-29T00:00:05Z",
            },
        ],
        "context": {"ip": "9.9.9.9", "library": {"name": "analytics-python"}},
        "integrations": {"All": True},
        "writeKey": "must-not-leak-into-messages",
        "sentAt": "2026-11-29T00:00:00Z",
    }
    assert messages_from_body(body) == [
        {
            "type": "identify",
            "userId": "1",
            "context": {"ip": "1.1.1.1", "library": {"name": "analytics-python"}},
            "integrations": {"All": True},
            "sentAt": "2026-11-29T00:00:00Z",
        },
        {
            "type": "track",
            "userId": "2",
            "context": {"ip": "9.9.9.9", "library": {"name": "analytics-python"}},
            "integrations": {"All": True, "SaaSquatch": False},
            "sentAt": "2026-11-29T00:00:05Z",
        },
    ]


def test_batch_envelope_without_context_keeps_items_as_they_are() -> None:
    assert messages_from_body({"batch": [{"type": "a"}]}) == [{"type": "a"}]


@pytest.mark.parametrize(
    "body",
    ["string", 3, None, True, [{"type": "a"}, 5], {"batch": "x"}, {"batch": [1], "context": {}}],
)
def test_other_shapes_are_refused(body: Any) -> None:
    with pytest.raises(BodyError):
        messages_from_body(body)
