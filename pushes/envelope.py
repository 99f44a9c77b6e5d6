"""The Pub/Sub push envelope, and the Segment message inside it.

`deliveryAttempt` (only with a dead-letter policy) and `orderingKey` (only with ordering) are
optional: the emulator sends neither.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from common import strict_json
from common.http import Refusal
from common.outcomes import Reason

# Pub/Sub messages are at most 10 MB; base64 and the envelope add about a third.
MAX_PUSH_BYTES = 16 * 1024 * 1024


class MalformedMessage(Exception):
    """A real push whose data is not a Segment message (JSON object): dead-lettered."""


class PushedMessage(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    data: bytes = b""
    attributes: dict[str, str] = Field(default_factory=dict)
    message_id: str = Field("", alias="messageId")
    publish_time: str = Field("", alias="publishTime")
    ordering_key: str = Field("", alias="orderingKey")

    @field_validator("data", mode="before")
    @classmethod
    def _base64(cls, value: Any) -> bytes:
        if value is None:
            return b""
        if not isinstance(value, str):
            raise ValueError("data must be a base64 string")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("data is not valid base64") from None

    @field_validator("attributes", mode="before")
    @classmethod
    def _no_null_attributes(cls, value: Any) -> Any:
        return {} if value is None else value


class PushEnvelope(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    message: PushedMessage
    subscription: str = ""
    delivery_attempt: int | None = Field(None, alias="deliveryAttempt")


def parse_envelope(raw: bytes) -> PushEnvelope:
    """The envelope, or a 400: a request that is not a push is a sender bug, not a message."""
    try:
        return PushEnvelope.model_validate_json(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        message = first["msg"].removeprefix("Value error, ")
        reason = f"not a Pub/Sub push envelope: {where}: {message}"
        raise Refusal(Reason.INVALID_BODY, reason) from None


def decode_json_object(data: bytes) -> dict[str, Any]:
    """The pushed message's data as a JSON object, read as strict JSON (`common.strict_json`):
    a Segment message for deliver, a SaaSquatch webhook for forward; or `MalformedMessage`."""
    try:
        message = strict_json.loads(data)
    except strict_json.NotJson as error:
        raise MalformedMessage(f"message data: {error}") from None
    if not isinstance(message, dict):
        raise MalformedMessage(f"message data is a JSON {type(message).__name__}, not an object")
    return message
