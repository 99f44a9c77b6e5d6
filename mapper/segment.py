"""The Segment message as the mapper reads it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .plan import Account, AccountFrom
from .sanitize import id_text, trait_key

IGNORED_TYPES = frozenset({"page", "screen", "group", "alias"})
SAASQUATCH_INTEGRATION_KEYS = frozenset({"saasquatch", "saasquatchv2"})


class SegmentContext(BaseModel):
    model_config = ConfigDict(extra="allow")

    traits: dict[str, Any] = Field(default_factory=dict)
    ip: Any = None
    userAgent: Any = None
    locale: Any = None

    @field_validator("traits", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


class SegmentMessage(BaseModel):
    """Common fields of Segment's spec; anything else is kept but unused.

    Only the shapes we rely on are checked (objects are objects); a message that breaks them is
    dead-lettered with the pydantic error, not guessed at.
    """

    model_config = ConfigDict(extra="allow")

    type: str | None = None
    userId: Any = None
    anonymousId: Any = None
    messageId: Any = None
    event: Any = None
    # Factories, not shared defaults: pydantic would deep-copy a default for every message.
    traits: dict[str, Any] = Field(default_factory=dict)
    properties: dict[str, Any] = Field(default_factory=dict)
    context: SegmentContext = Field(default_factory=SegmentContext)
    integrations: dict[str, Any] = Field(default_factory=dict)
    timestamp: Any = None
    originalTimestamp: Any = None
    receivedAt: Any = None

    @field_validator("traits", "properties", "integrations", "context", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @property
    def user_id(self) -> str | None:
        return id_text(self.userId)

    @property
    def message_id(self) -> str | None:
        return id_text(self.messageId)

    def excludes_saasquatch(self) -> bool:
        """`integrations: {"SaaSquatch": false}` (any case, also "SaaSquatch v2") opts out."""
        return any(
            value is False and trait_key(name) in SAASQUATCH_INTEGRATION_KEYS
            for name, value in self.integrations.items()
        )


def find_trait(traits: dict[str, Any], name: str) -> Any:
    """First non-empty trait whose name matches `name` ignoring case and `_`, `-`, space."""
    wanted = trait_key(name)
    for key, value in traits.items():
        if trait_key(key) == wanted and value is not None and value != "":
            return value
    return None


def account_for(traits: dict[str, Any], user_id: str, remembered: str | None = None) -> Account:
    """Shared accounts come from the `account_id` trait. Without one the hosted product makes
    each user a solo account (the user id); we first take `remembered`, the account an earlier
    message named for this user (deliver's memory, docs/mapping.md), when there is one."""
    named = id_text(find_trait(traits, "accountId"))
    if named is not None:
        return Account(named, AccountFrom.TRAIT, user_id)
    if remembered:
        return Account(remembered, AccountFrom.REMEMBERED, user_id)
    return Account(user_id, AccountFrom.USER_ID, user_id)
