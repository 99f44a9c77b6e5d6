"""What a dead-lettered message carries, within Pub/Sub's attribute limits."""

from __future__ import annotations

from datetime import UTC, datetime

from pushes.dead_letters import ADDED_ATTRIBUTES, dead_letter_message

WHEN = datetime(2026, 11, 29, 12, 0, 0, 123000, tzinfo=UTC)


def test_the_original_is_kept_and_the_reason_added() -> None:
    letter = dead_letter_message(
        b'{"type":"track"}',
        {"type": "track", "messageId": "m-1"},
        reason="saasquatch_rejected",
        when=WHEN,
        detail="track_event: SaaSquatch answered 400: bad",
        status=400,
        codes=(("api_error_code", "INVALID"), ("rs_code", "RS002")),
        source_message_id="4711",
        subscription="projects/p/subscriptions/deliver",
        delivery_attempt=5,
        ordering_key="u-1",
    )
    assert letter.data == b'{"type":"track"}'
    assert letter.ordering_key == ""
    assert dict(letter.attributes) == {
        "type": "track",
        "messageId": "m-1",
        "reason": "saasquatch_rejected",
        "detail": "track_event: SaaSquatch answered 400: bad",
        "status": "400",
        "apiErrorCode": "INVALID",
        "rsCode": "RS002",
        "deadLetteredAt": "2026-11-29T12:00:00.123+00:00",
        "sourceMessageId": "4711",
        "sourceSubscription": "projects/p/subscriptions/deliver",
        "deliveryAttempt": "5",
        "orderingKey": "u-1",
    }
    assert set(letter.attributes) - {"type", "messageId"} == set(ADDED_ATTRIBUTES)


def test_what_saasquatch_did_not_say_is_left_out() -> None:
    letter = dead_letter_message(b"x", {}, reason="malformed_message", when=WHEN)
    assert set(letter.attributes) == {"reason", "deadLetteredAt"}


def test_values_fit_pubsub_limits() -> None:
    originals = {f"attr{n:03d}": "v" for n in range(100)}
    letter = dead_letter_message(
        b"x", originals, reason="saasquatch_rejected", when=WHEN, detail="é" * 2000
    )
    assert len(letter.attributes) == 100
    assert len(letter.attributes["detail"].encode()) <= 1024
    assert letter.attributes["reason"] == "saasquatch_rejected"
