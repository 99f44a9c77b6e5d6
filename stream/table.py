"""Which SaaSquatch webhook becomes which Segment call: one declared row per webhook type.

A row names the call, the event, where the user's id is, and each Segment property (or
trait) with the paths in the webhook's `data` it is read from (the first present wins).
Values are passed as SaaSquatch sent them (dates stay epoch milliseconds), so nothing is
lost; the docs' "Segment v2 Stream" names are used for the events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Paths = tuple[str, ...]  # dotted paths into the webhook's `data`, tried in order


@dataclass(frozen=True, slots=True)
class Stream:
    """How one webhook type becomes one Segment call.

    `user`: where the Segment `userId` is read; without one the webhook cannot be forwarded,
    unless `tenant_wide` (a coupon made for a program, not a user): then the tenant is the
    `anonymousId`. `fields`: Segment property (or, for an identify, trait) -> paths. `spread`:
    an object in `data` whose members are added as they are (a user's custom fields), never
    over a declared field.
    """

    call: Literal["identify", "track"]
    user: Paths
    fields: dict[str, Paths]
    event: str | None = None
    spread: str | None = None
    tenant_wide: bool = False


_REFERRAL: dict[str, Paths] = {
    "referralId": ("id",),
    "accountId": ("referrer.accountId",),
    "programId": ("programId",),
    "referredUserId": ("referred.id", "referredUser"),
    "referredAccountId": ("referred.accountId",),
    "referrerUserId": ("referrer.id", "referrerUser"),
    "moderationStatus": ("moderationStatus",),
    "referrerModerationStatus": ("referrerModerationStatus",),
    "referredModerationStatus": ("referredModerationStatus",),
    "dateReferralStarted": ("dateReferralStarted",),
    "dateConverted": ("dateConverted",),
    "dateReferralEnded": ("dateReferralEnded",),
}
# A referral is the referrer's: their program advanced (and their reward follows).
_REFERRER = ("referrer.id", "referrerUser")

STREAMS: dict[str, Stream] = {
    "user.created": Stream(
        "identify",
        user=("id",),
        fields={
            "accountId": ("accountId",),
            "email": ("email",),
            "firstName": ("firstName",),
            "lastName": ("lastName",),
            "locale": ("locale",),
            "avatar": ("imageUrl",),
            "referralCode": ("referralCode",),
            "referralCodes": ("referralCodes",),
            "referable": ("referable",),
            "createdAt": ("dateCreated",),
        },
        spread="customFields",
    ),
    "referral.started": Stream("track", _REFERRER, _REFERRAL, "Referral Started"),
    "referral.converted": Stream("track", _REFERRER, _REFERRAL, "Referral Converted"),
    "referral.ended": Stream("track", _REFERRER, _REFERRAL, "Referral Ended"),
    "reward.created": Stream(
        "track",
        user=("userId",),
        event="Reward Created",
        fields={
            "rewardId": ("id",),
            "accountId": ("accountId",),
            "name": ("name",),
            "type": ("type",),
            "rewardSource": ("rewardSource",),
            "programId": ("programId",),
            "unit": ("unit",),
            "assignedCredit": ("assignedCredit",),
            "discountPercent": ("discountPercent",),
            "dateGiven": ("dateGiven",),
            "dateExpires": ("dateExpires",),
            "dateScheduledFor": ("dateScheduledFor",),
        },
    ),
    "user.reward.balance.changed": Stream(
        "track",
        user=("userId",),
        event="Reward Balance Changed",
        fields={
            "accountId": ("accountId",),
            "unit": ("unit",),
            "availableValue": ("availableValue",),
            "resourceVersion": ("resourceVersion",),
        },
    ),
    "coupon.created": Stream(
        "track",
        user=("user.id", "userId"),
        event="Coupon Created",
        tenant_wide=True,
        fields={
            "accountId": ("user.accountId", "accountId"),
            "code": ("code",),
            "programId": ("programId",),
            "dateCreated": ("dateCreated",),
        },
    ),
}
