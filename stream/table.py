"""Which SaaSquatch webhook becomes which Segment call: one declared row per webhook type.

A row names the call, the event, where the user's id is, and each Segment property (or trait)
with where in the webhook's `data` it is read. Every field of SaaSquatch's webhook schemas
(`saasquatch/schema`, `src/json/webhooks/`) for a forwarded type is declared here or in
`DROPPED` with the reason, and tests/stream/test_stream_fields.py holds the table to the schemas
and to SaaSquatch's own example webhooks.

Names: the older names (`avatar`, `createdAt`, `referralId`, `rewardId`, `accountId`, ...) are
kept so mappings built on them hold; every other field keeps SaaSquatch's name. SaaSquatch's
hosted Stream documents its event names only (the rows' `event` follows it), not its properties.
Values go as SaaSquatch sent them, nested objects as objects and lists as lists, except dates
(epoch milliseconds), which go as ISO 8601 in UTC; a null is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Paths = tuple[str, ...]  # dotted paths into the webhook's `data`, tried in order


@dataclass(frozen=True, slots=True)
class Field:
    """Where one Segment property (or trait) is read, and how it is sent.

    `paths`: the first one present and not null wins. `date`: epoch milliseconds, sent as ISO
    8601 UTC with milliseconds (a value that is not a number goes as sent). `dates_in`: keys
    that are such dates inside the value's objects and list items (a reward's
    `redemptions[].dateRedeemed`). `optional`: left out, after the custom fields, when the
    message would be over Segment's 32 KB (`mapping.fit`).
    """

    paths: Paths
    date: bool = False
    dates_in: frozenset[str] = frozenset()
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Stream:
    """How one webhook type becomes one Segment call.

    `user`: where the Segment `userId` is read; without one the webhook cannot be forwarded,
    unless `tenant_wide` (a coupon made for a program, not a user): then the tenant is the
    `anonymousId`. `fields`: Segment property (or, for an identify, trait) -> `Field`.
    `event`: the track's default name (`FORWARD_EVENT_NAMES` renames it). `spread`: an object in
    `data` whose members are added as they are (a user's custom fields), never over a declared
    field, and the first to go when the message is too large.
    """

    call: Literal["identify", "track"]
    user: Paths
    fields: Mapping[str, Field]
    event: str | None = None
    spread: str | None = None
    tenant_wide: bool = False


def same(*names: str) -> dict[str, Field]:
    """Fields sent under SaaSquatch's own name."""
    return {name: Field((name,)) for name in names}


def dates(*names: str) -> dict[str, Field]:
    """Date fields sent under SaaSquatch's own name."""
    return {name: Field((name,), date=True) for name in names}


_REFERRAL: dict[str, Field] = {
    "referralId": Field(("id",)),
    "accountId": Field(("referrer.accountId",)),  # the referrer's, as the call is theirs
    "referrerUserId": Field(("referrer.id", "referrerUser")),
    "referredUserId": Field(("referred.id", "referredUser")),
    "referredAccountId": Field(("referred.accountId",)),
    # Classic programs also name both users by `referrerUser`/`referredUser`, which need not be
    # the `referrer.id`/`referred.id` above (SaaSquatch's own examples differ): sent as they are.
    **same(
        "programId",
        "referralCodeUsed",
        "shareLinkUsed",
        "referrerUser",
        "referredUser",
        "moderationStatus",
        "referrerModerationStatus",
        "referredModerationStatus",
        "referrerReward",
        "referredReward",
    ),
    **dates(
        "dateReferralStarted",
        "dateConverted",
        "dateReferralEnded",
        "dateReferralPaid",
        "dateModerated",
        "dateModified",
        "dateUserModified",
    ),
    "fraudSignals": Field(("fraudSignals",), optional=True),
}
# A referral is the referrer's: their program advanced (and their reward follows).
_REFERRER = ("referrer.id", "referrerUser")

STREAMS: dict[str, Stream] = {
    "user.created": Stream(
        "identify",
        user=("id",),
        fields={
            **same(
                "accountId",
                "email",
                "firstName",
                "lastName",
                "lastInitial",
                "locale",
                "countryCode",
                "referralCode",
                "referralCodes",
                "referable",
                "referredByCodes",
                "segments",
                "firstSeenIP",
                "lastSeenIP",
                "cookieId",
                "paymentProviderId",
                "referralSource",
            ),
            "avatar": Field(("imageUrl",)),  # Segment's reserved trait
            "createdAt": Field(("dateCreated",), date=True),  # Segment's reserved trait
            "dateBlocked": Field(("dateBlocked",), date=True),
            # The links can be listed again from SaaSquatch at any time (and grow with every
            # program), so they are what goes after the custom fields.
            "shareLinks": Field(("shareLinks",), optional=True),
            "programShareLinks": Field(("programShareLinks",), optional=True),
        },
        spread="customFields",
    ),
    # The hosted Stream's "Referral Created" is the webhook that creates a referral.
    "referral.started": Stream("track", _REFERRER, _REFERRAL, "Referral Created"),
    "referral.converted": Stream("track", _REFERRER, _REFERRAL, "Referral Converted"),
    "referral.ended": Stream("track", _REFERRER, _REFERRAL, "Referral Ended"),
    "reward.created": Stream(
        "track",
        user=("userId",),
        event="Reward Created",
        fields={
            "rewardId": Field(("id",)),
            **same(
                "accountId",
                "type",
                "name",
                "description",
                "rewardSource",
                "programId",
                "unit",
                "cancellable",
                # PCT_DISCOUNT
                "discountPercent",
                # FUELTANK: the code is what fulfilment hands out
                "fuelTankCode",
                "fuelTankType",
                "amount",
                # CREDIT
                "assignedCredit",
                "redeemedCredit",
                # INTEGRATION
                "valueInCents",
                "integrationId",
            ),
            **dates("dateCreated", "dateGiven", "dateExpires", "dateScheduledFor", "dateCancelled"),
            "redemptions": Field(
                ("redemptions",), dates_in=frozenset({"dateRedeemed"}), optional=True
            ),
            "rewardDetails": Field(("rewardDetails",), optional=True),
        },
    ),
    "user.reward.balance.changed": Stream(
        "track",
        user=("userId",),
        event="Reward Balance Changed",
        # `resourceVersion` orders balances (the greater, the newer); it is not a date.
        fields=same("accountId", "unit", "availableValue", "resourceVersion"),
    ),
    "coupon.created": Stream(
        "track",
        user=("user.id", "userId"),
        event="Coupon Created",
        tenant_wide=True,
        fields={
            "accountId": Field(("user.accountId", "accountId")),
            **same("code", "programId"),
            **dates("dateCreated"),
        },
    ),
}

# Fields of SaaSquatch's schemas left out on purpose, with why. Everything else is sent.
DROPPED: dict[str, dict[str, str]] = {
    "user.created": {
        "emailHash": (
            "an MD5 of `email`, which is sent: any destination can derive it, and MD5 is not "
            "the hash ad platforms match on (SHA-256), so a copy would only mislead"
        ),
    },
}
